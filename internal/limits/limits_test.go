package limits

import (
	"io"
	"runtime"
	"strings"
	"testing"
)

// tiny are limits small enough that each case below sits just under or
// just over one of them, and far from the others.
var tiny = Limits{Kind: "test", Size: 400, Scalar: 10, Depth: 3, Entries: 4, Nodes: 12}

// TestCheck pins each limit of the scan: a file at the limit passes, one
// unit beyond fails with the message and position of the first thing
// beyond it.
func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" for accepted
	}{
		{"size at the limit", "a: " + strings.Repeat("b", 7) + "\n" + strings.Repeat("#", 400-11), ""},
		{"size beyond", "a: b\n" + strings.Repeat("#", 400-5+1), "f:1:1: file size exceeds limit 400 bytes (test file size)"},

		{"plain scalar at the limit", "a: 0123456789\n", ""},
		{"plain scalar beyond", "a: 0123456789x\n", "f:1:4: scalar exceeds limit 10 bytes (test scalar size)"},
		{"key beyond", "0123456789x: a\n", "f:1:1: scalar exceeds limit 10 bytes (test scalar size)"},
		{"quoted at the limit", `a: "0123456789"` + "\n", ""},
		{"quoted beyond", `a: "0123456789x"` + "\n", "f:1:4: scalar exceeds limit 10 bytes (test scalar size)"},
		{"single-quoted escape", "a: 'it''s 1234'\n", ""},
		{"multi-line quoted beyond", "a: \"01234\n  56789\"\n", "f:1:4: scalar exceeds limit 10 bytes (test scalar size)"},
		{"block scalar at the limit", "a: |\n  12\n  34\n", ""}, // 5+5 bytes: indentation and line breaks count
		{"block scalar beyond", "a: |\n  12\n  345\n", "f:1:4: scalar exceeds limit 10 bytes (test scalar size)"},
		{"plain continuation beyond", "a: 01234\n  56789\n", "f:1:4: scalar exceeds limit 10 bytes (test scalar size)"},
		{"flow scalar beyond", "a: [b, 0123456789x]\n", "f:1:8: scalar exceeds limit 10 bytes (test scalar size)"},

		{"block depth at the limit", "a:\n  b:\n    c: d\n", ""},
		{"block depth beyond", "a:\n  b:\n    c:\n      d: e\n", "f:4:7: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"compact list depth beyond", "a:\n- - - b\n", "f:2:5: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"list at a key's column", "a:\n- b: c\n", ""},
		{"list in a list item's mapping", "a:\n- b:\n  - c\n", "f:3:3: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"tagged compact list beyond", "- - ! - - x\n", "f:1:9: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"anchor alone on its line", "a:\n  &x\n  b:\n    c: [[d]]\n", "f:4:8: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"tag then a list at its column", "- !\n- !\n- !\n- x\n", "f:4:1: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"key at an empty item's column", "a:\n-\nb:\n- c:\n", "f:4:1: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"tag ended by a tab", "- !\t0 - - - x\n", "f:1:11: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"flow depth at the limit", "a: [[b]]\n", ""},
		{"flow depth beyond", "a: [[[b]]]\n", "f:1:6: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"pair in a flow list at the limit", "a: [b: c]\n", ""},
		{"pair in a flow list beyond", "a: [[b: c]]\n", "f:1:7: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"json depth beyond", `{"a": {"b": {"c": {}}}}`, "f:1:19: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"scalar on its own line is not a level", "a:\n  b:\n    c:\n      d\n", ""},

		{"keys at the limit", "a: 1\nb: 2\nc: 3\nd: 4\n", ""},
		{"keys beyond", "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\n", "f:5:1: mapping of more than 4 keys exceeds limit 4 (test entries per mapping or list)"},
		{"items at the limit", "- 1\n- 2\n- 3\n- 4\n", ""},
		{"items beyond", "a:\n- 1\n- 2\n- 3\n- 4\n- 5\nb: 1\n", "f:6:1: list of more than 4 items exceeds limit 4 (test entries per mapping or list)"},
		{"flow items beyond", "a: [1, 2, 3, 4, 5]\n", "f:1:17: list of more than 4 items exceeds limit 4 (test entries per mapping or list)"},
		{"flow keys beyond", "a: {b: 1, c: 2, d: 3, e: 4, f: 5}\n", "f:1:29: mapping of more than 4 keys exceeds limit 4 (test entries per mapping or list)"},
		{"block scalar lines are not keys", "a: |\n  b: 1\n  c: 2\n  d: 3\n  e: 4\n  f: 5\n", "f:1:4: scalar exceeds limit 10 bytes (test scalar size)"},
		{"comments are not keys", "a: 1\n# b: 2\n# c: 3\n# d: 4\n# e: 5\n", ""},

		{"nodes at the limit", "a: [1, 2, 3]\nb: [1, 2, 3]\nc: [1, 2, 3]\n", ""},
		{"nodes beyond", "a: [1, 2, 3]\nb: [1, 2, 3]\nc: [1, 2, 3]\nd: 1\n", "f:4:1: more than 12 keys and list items exceed limit 12 (test nodes per file)"},
		{"CRLF line breaks", "a:\r\n  b:\r\n    c: d\r\n", ""},
		{"CR line breaks", "a:\r  b:\r    c:\r      d: e\r", "f:4:7: nesting depth 4 exceeds limit 3 (test nesting depth)"},
		{"documents reset the levels", "a: 1\nb: 2\n---\nc: 3\nd: 4\ne: 5\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := Check("f", []byte(tt.in), tiny); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Check(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestUTF8 pins the position of the first byte that is not UTF-8, or of
// the first control character: its line, and its column counted in
// characters as the parser counts them.
func TestUTF8(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"a: b\n", ""},
		{"a: é\n", ""},
		{"a: \xff\n", "f:1:4: invalid UTF-8 (byte 0xff): the file must be UTF-8 text"},
		{"a: b\nc: éé\xc3\n", "f:2:6: invalid UTF-8 (byte 0xc3): the file must be UTF-8 text"},
		{"a: b\n\n  # \xed\xa0\x80\n", "f:3:5: invalid UTF-8 (byte 0xed): the file must be UTF-8 text"}, // a surrogate
		{"\xfe", "f:1:1: invalid UTF-8 (byte 0xfe): the file must be UTF-8 text"},
		{"a:\tb\r\nc: d\u0085e\n", ""},
		{"- - -\x00", "f:1:6: control character U+0000 is not allowed in YAML"},
		{"a: é\x1b[31m\n", "f:1:5: control character U+001B is not allowed in YAML"},
		{"a: \u009b\n", "f:1:4: control character U+009B is not allowed in YAML"},
		{"a: \x7f\n", "f:1:4: control character U+007F is not allowed in YAML"},
	}
	for _, tt := range tests {
		got := ""
		if err := Check("f", []byte(tt.in), Config); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Check(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// endless is a reader that never ends and counts what was read from it.
type endless struct{ n int64 }

func (r *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += int64(len(p))
	return len(p), nil
}

// TestReadStopsAtLimit proves the bound structurally: reading an endless
// input takes at most the limit plus one byte from it.
func TestReadStopsAtLimit(t *testing.T) {
	r := &endless{}
	_, err := Read("f", r, Config)
	if err == nil || err.Error() != "f:1:1: file size exceeds limit 4194304 bytes (config file size)" {
		t.Fatalf("got %v", err)
	}
	if r.n > Config.Size+1 {
		t.Fatalf("read %d bytes from an endless input; the limit is %d", r.n, Config.Size)
	}
	data, err := Read("f", io.LimitReader(&endless{}, Config.Size), Config)
	if err != nil || int64(len(data)) != Config.Size {
		t.Fatalf("a file at the limit: %d bytes, %v", len(data), err)
	}
}

// TestHostileShapes are files just under the config's size limit made of
// one construct repeated, each a way to nest deeply in few bytes (the
// parser recurses per level: a value of a million "[" killed it). Each is
// refused at the first level beyond the limit, and the scan allocates
// almost nothing: it stops there, with a few levels of state.
func TestHostileShapes(t *testing.T) {
	fill := func(head, unit, tail string) []byte {
		n := (int(Config.Size) - len(head) - len(tail)) / len(unit)
		return []byte(head + strings.Repeat(unit, n) + tail)
	}
	var indent strings.Builder
	for i := 0; indent.Len() < int(Config.Size)-4000; i++ {
		indent.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"list items", fill("", "- ", "x\n"), "f:1:65: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"explicit keys", fill("", "? ", "x\n"), "f:1:65: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"explicit value", fill("? a\n: ", "[", ""), "f:2:34: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"list of explicit keys", fill("- ? ", "[", ""), "f:1:35: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"flow lists", fill("a: ", "[", ""), "f:1:35: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"flow mappings", fill("", "{a: ", ""), "f:1:129: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"indentation", []byte(indent.String()), "f:33:33: nesting depth 33 exceeds limit 32 (config nesting depth)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := Check("f", tt.data, Config)
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("allocated %d KiB", n>>10)
			}
		})
	}
}
