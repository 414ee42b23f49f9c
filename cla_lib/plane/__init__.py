"""A model loaded (`loading.load_model`: an organism, a preset, a directory, a GGUF file, a hub id, or NDIF) and
placed on the transfer–localization plane (`evaluation`: its items, from the organism's world or real data)."""
