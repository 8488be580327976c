"""Files into chunks that fit their content: code along its structure, markdown by
headings, plain text by paragraphs. Each chunk keeps its source, line range,
language and kind, and has a stable id (source + position + content hash)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

CHUNK_CHARS = 900
MAX_FILE_BYTES = 2_000_000

LANGUAGES: dict[str, Language] = {
    ".py": Language.PYTHON, ".js": Language.JS, ".jsx": Language.JS, ".ts": Language.TS,
    ".tsx": Language.TS, ".go": Language.GO, ".rs": Language.RUST, ".java": Language.JAVA,
    ".kt": Language.KOTLIN, ".c": Language.C, ".h": Language.C, ".cc": Language.CPP,
    ".cpp": Language.CPP, ".hpp": Language.CPP, ".cs": Language.CSHARP, ".rb": Language.RUBY,
    ".php": Language.PHP, ".swift": Language.SWIFT, ".scala": Language.SCALA, ".lua": Language.LUA,
    ".r": Language.R, ".hs": Language.HASKELL, ".ex": Language.ELIXIR, ".pl": Language.PERL,
    ".md": Language.MARKDOWN, ".markdown": Language.MARKDOWN, ".rst": Language.RST,
    ".tex": Language.LATEX, ".html": Language.HTML, ".htm": Language.HTML,
}  # fmt: skip
# Source code: a document of one of these makes a code query (graph.routing), and the index
# takes it (split along its structure where LANGUAGES knows the language, else as text).
CODE_EXTENSIONS = frozenset(
    {".py", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp",
     ".cs", ".rb", ".php", ".swift", ".scala", ".lua", ".r", ".hs", ".ex", ".pl", ".sh", ".bash", ".sql",
     ".m", ".zig"}
)  # fmt: skip
TEXT_EXTENSIONS = frozenset({".txt", ".text", ".csv", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ""})
INDEXABLE = frozenset(LANGUAGES) | CODE_EXTENSIONS | TEXT_EXTENSIONS | {".pdf"}


class Unreadable(ValueError):
    """A file that is skipped, with the reason as its message."""


@dataclass(frozen=True)
class Chunk:
    text: str
    source: str  # absolute path
    line_start: int
    line_end: int
    language: str
    kind: str
    position: int  # the chunk's number within its file

    @property
    def id(self) -> str:
        where = hashlib.sha1(self.source.encode()).hexdigest()[:12]
        content = hashlib.sha256(self.text.encode()).hexdigest()[:16]
        return f"{self.kind}:{where}:{self.position}:{content}"

    def metadata(self) -> dict[str, str | int]:
        return {
            "source": self.source, "line_start": self.line_start, "line_end": self.line_end,
            "language": self.language, "kind": self.kind, "position": self.position,
        }  # fmt: skip


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES, *, what: str = "file", pdf: bool = True) -> str:
    """The text of `path`, or Unreadable with one line saying why not, starting with `what`:
    too large, binary (a NUL byte in its first 8 KiB), or not UTF-8. With `pdf`, a .pdf file's
    text is extracted; without it, a PDF is read like any other file."""
    size = path.stat().st_size
    if size > max_bytes:
        raise Unreadable(f"{what} is too large: {size} bytes (the limit is {max_bytes})")
    if pdf and path.suffix.lower() == ".pdf":
        return _pdf_text(path)
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise Unreadable(f"{what} looks binary")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable(f"{what} is not valid UTF-8") from None


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [page.extract_text() or "" for page in PdfReader(path).pages]
    except (PdfReadError, ValueError, OSError) as exc:
        raise Unreadable(f"unreadable PDF ({exc})") from None
    text = "\n\n".join(pages).strip()
    if not text:
        raise Unreadable("PDF has no extractable text")
    return text


def _splitter(suffix: str) -> tuple[RecursiveCharacterTextSplitter, str]:
    language = LANGUAGES.get(suffix)
    if language is not None:
        splitter = RecursiveCharacterTextSplitter.from_language(
            language, chunk_size=CHUNK_CHARS, chunk_overlap=0, add_start_index=True
        )
        return splitter, language.value
    paragraphs = RecursiveCharacterTextSplitter(
        separators=["\n\n", "\n", ". ", " ", ""],
        chunk_size=CHUNK_CHARS,
        chunk_overlap=0,
        add_start_index=True,
    )
    return paragraphs, "pdf" if suffix == ".pdf" else "text"


def chunk_text(text: str, source: str, kind: str) -> list[Chunk]:
    splitter, language = _splitter(Path(source).suffix.lower())
    chunks = []
    for position, doc in enumerate(splitter.create_documents([text])):
        start = max(0, doc.metadata["start_index"])
        line_start = text.count("\n", 0, start) + 1
        line_end = line_start + doc.page_content.count("\n")
        chunks.append(Chunk(doc.page_content, source, line_start, line_end, language, kind, position))
    return chunks
