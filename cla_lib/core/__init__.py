"""The floor everything stands on, importing nothing else of the library: scored items and their languages, the one
padder and packer, the one atomic writer, the one training loop, command-line values, and FLOP accounting against
the machine's matmul ceiling."""
