"""The live kit: camera -> gate + infer -> decide -> render -> record, the sources and displays it
picks by URI, and the timing log."""
