"""POST /v1/rerank: Cohere/Jina-style reranking (a Tollway extension of the OpenAI surface).

Request: `{"model", "query", "documents": [str | {"text"}], "top_n"?, "return_documents"?}`.
Answer: `{"id", "object": "list", "model", "results": [{"index", "relevance_score", "document"?: {"text"}}],
"usage": {"prompt_tokens", "total_tokens", "search_units"}, "meta": {"billed_units": {"search_units"}}}`,
results sorted by score, best first. `return_documents` defaults to false, as Cohere's API does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tollway.api.http import authenticate, read_json_object
from tollway.api.openai.media import check_fields, is_int, is_text, result_response, run_call
from tollway.errors import InvalidRequest
from tollway.types import JSON, Operation

MAX_DOCUMENTS = 1000  # Cohere's limit per request

FIELDS = {
    "model": (lambda v: isinstance(v, str), "a string"),
    "query": (is_text, "a non-empty string"),
    "top_n": (lambda v: is_int(v) and v >= 1, "a positive integer"),
    "return_documents": (lambda v: isinstance(v, bool), "a boolean"),
}


async def rerank(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, raw = await read_json_object(request)
    check_rerank(body)
    call, result = await run_call(request, principal, Operation.RERANK, body, raw=raw)
    return result_response(call, result)


def check_rerank(body: JSON) -> None:
    if not body.get("model"):
        raise InvalidRequest("You must provide a model parameter.", param="model")
    if body.get("query") is None:
        raise InvalidRequest("You must provide a 'query' string.", param="query")
    check_fields(body, FIELDS)
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents:
        raise InvalidRequest("'documents' must be a non-empty array.", param="documents")
    if len(documents) > MAX_DOCUMENTS:
        raise InvalidRequest(f"'documents' may hold at most {MAX_DOCUMENTS} items.", param="documents")
    for index, document in enumerate(documents):
        if not _is_document(document):
            raise InvalidRequest(
                f"documents[{index}] must be a string or an object with a 'text' string.",
                param=f"documents[{index}]",
            )


def _is_document(document: Any) -> bool:
    return isinstance(document, str) or (isinstance(document, dict) and isinstance(document.get("text"), str))
