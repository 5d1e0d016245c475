"""Pure translations between wire formats and the canonical (OpenAI Chat Completions) shape."""
