"""Session chains: a conversation's verbatim turns as a tamper-evident, Seal-encrypted chain of Walrus blobs.

    frames.py       the versioned frame format (canonical bytes, caps, parse/encode)
    errors.py       typed errors of a chain that does not verify (fork, gap, reorder, substitution …)
    chain_index.py  which of the owner's Blob objects claim which (session, sequence): the chain is the index
    walk.py         the verified walk: from the head back to the first wanted turn, every link checked
    chains.py       append / read / list / close over the sidecar and the chain
"""
