"""FAULTY (reverses code points, not graphemes), as server2 --mode reverse: `café`
written with a combining accent loses its accent to the wrong letter, a skin tone
leaves its thumb, and a flag's two letters swap into another flag. The line loop is
lines.py's."""
from lines import serve_forever  # lines.py, beside this file

serve_forever(lambda text: text[::-1])  # BUG: code points
