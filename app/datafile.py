"""Reading the versioned YAML data the business edits (taxonomy, routing policy, judge examples): one way to
say that a file cannot be read or is not YAML, naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml


def stamped_version(declared: object, text: str) -> str:
    """The version a file declares and a hash of its text, so an edit without a version bump still shows."""
    return f"{declared}+{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def read_yaml(path: Path, error: type[Exception]) -> tuple[str, Any]:
    """The file's text (for its version hash) and its parsed content (None for an empty file); a problem
    raises `error` with the file named."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, yaml.safe_load(text)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML ({exc})") from None
