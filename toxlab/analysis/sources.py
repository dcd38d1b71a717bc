"""Chapter 1's data card as typed rows: each source a level reads, its size and where it comes from."""

from __future__ import annotations

from dataclasses import dataclass

from toxlab.data.corpora import LICENSES


@dataclass(frozen=True)
class SourceRow:
    """One source of the data folder: its role in the mixture, its size (tokens with the level's tokenizer, counted
    or estimated from a sample) and its licence and origin (shared/data/SOURCES.md)."""

    source: str
    role: str
    documents: int | None
    characters: int | None
    tokens: float | None
    tokens_exact: bool | None
    licence: str
    origin: str


def source_rows(info: dict) -> list[SourceRow]:
    """The sources present in a `data_info` entry's `sources.json`, in its order."""
    return [SourceRow(row["source"], row["role"], row.get("documents"), row.get("chars"), row.get("tokens"),
                      row.get("tokens_exact"), *LICENSES[row["source"]])
            for row in info["sources"] if row["present"]]
