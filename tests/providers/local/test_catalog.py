from __future__ import annotations

import subprocess
import sys

import pytest

from tollway.providers.local.catalog import LOCAL_MODELS, MODELS_BY_ID, UNSUPPORTED, models_for
from tollway.providers.local.errors import LocalModelUnavailable


def test_expected_models_and_capabilities() -> None:
    assert set(MODELS_BY_ID) == {
        "local:all-minilm-l6-v2",
        "local:smollm2-135m-instruct",
        "local:whisper-tiny-en",
        "local:hibari",
        "local:profanity-check",
        "local:lanczos",
    }
    assert MODELS_BY_ID["local:all-minilm-l6-v2"].dimensions == 384
    assert MODELS_BY_ID["local:all-minilm-l6-v2"].context_tokens == 256
    assert MODELS_BY_ID["local:smollm2-135m-instruct"].context_tokens == 2048
    assert [m.id for m in models_for("rerank")] == ["local:all-minilm-l6-v2"]
    assert "images.generations" in UNSUPPORTED


@pytest.mark.parametrize("model", LOCAL_MODELS, ids=lambda m: m.id)
def test_installed_models_build_unloaded_engines(model: object) -> None:
    if not model.installed():  # type: ignore[attr-defined]
        with pytest.raises(LocalModelUnavailable):
            model.create_engine()  # type: ignore[attr-defined]
        return
    engine = model.create_engine()  # type: ignore[attr-defined]
    assert engine.loaded is False
    assert model.memory_mb > 0 and model.requires and model.model_card  # type: ignore[attr-defined]


def test_missing_package_is_reported_clearly() -> None:
    from dataclasses import replace

    from tollway.providers.local.catalog import Requirement

    broken = replace(LOCAL_MODELS[0], requires=(Requirement("no-such-pkg==1.0", "no_such_pkg_xyz"),))
    assert not broken.installed()
    with pytest.raises(LocalModelUnavailable) as info:
        broken.create_engine()
    assert info.value.missing_package == "no-such-pkg==1.0"
    assert "pip install" in info.value.message


def test_importing_engine_modules_loads_no_heavy_package() -> None:
    code = (
        "import sys\n"
        "import tollway.providers.local.catalog, tollway.providers.local.pool\n"
        "for name in ('embeddings', 'rerank', 'moderation', 'speech', 'transcription', 'chat', 'upscale'):\n"
        "    __import__('tollway.providers.local.' + name)\n"
        "heavy = {'numpy', 'onnxruntime', 'av', 'llama_cpp', 'PIL', 'faster_whisper', 'sklearn', 'hibari'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_engine_without_its_package_raises_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from tollway.providers.local.embeddings import MiniLMEmbedder

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(LocalModelUnavailable) as info:
        MiniLMEmbedder().load()
    assert info.value.missing_package == "onnxruntime"
    assert info.value.status == 503
