package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/autoheal/autoheal/internal/limits"
)

// group is a valid config of one group with extra text in its launch.
func group(launch string) string {
	return "groups:\n- name: a\n  launch:\n    command: sh\n" + launch
}

// nested is a config whose root mapping nests depth mappings.
func nested(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", i), i)
	}
	return b.String()
}

// lines repeats format (given the index) n times.
func lines(n int, format string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}

// TestConfigLimits runs each limit of the config through Parse with the
// real values: just under it, Parse reports no limit (the file may still be
// invalid for other reasons); just over it, the problem names the limit,
// at the first thing beyond it.
func TestConfigLimits(t *testing.T) {
	big := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name        string
		under, over string
		want        string
	}{
		{"file size", group("") + strings.Repeat("#", int(limits.Config.Size)-len(group(""))),
			group("") + strings.Repeat("#", int(limits.Config.Size)-len(group(""))+1),
			"c.yaml:1:1: file size exceeds limit 4194304 bytes (config file size)"},
		{"scalar size", group("    user_data: " + big(64<<10) + "\n"), group("    user_data: " + big(64<<10+1) + "\n"),
			"c.yaml:5:16: scalar exceeds limit 65536 bytes (config scalar size)"},
		{"nesting depth", nested(32), nested(33),
			"c.yaml:33:33: nesting depth 33 exceeds limit 32 (config nesting depth)"},
		{"entries", group("    env:\n" + lines(1000, "      V%d: x\n")), group("    env:\n" + lines(1001, "      V%d: x\n")),
			"c.yaml:1006:7: mapping of more than 1000 keys exceeds limit 1000 (config entries per mapping or list)"},
		{"nodes", lines(50, "k%d:\n"+lines(999, "- x%d\n")), lines(50, "k%d:\n"+lines(999, "- x%d\n")) + "last: x\n",
			"c.yaml:50001:1: more than 50000 keys and list items exceed limit 50000 (config nodes per file)"},
		{"tags per group", "groups:\n- name: a\n  launch: {command: sh}\n  tags:\n" + lines(50, "    t%d: x\n"),
			"groups:\n- name: a\n  launch: {command: sh}\n  tags:\n" + lines(51, "    t%d: x\n"),
			"c.yaml:4:3: groups[0].tags: 51 exceeds limit 50 (tags per group)"},
		{"groups", "groups:\n" + lines(1000, "- name: g%d\n  launch: {command: sh}\n"),
			"groups: [" + strings.Repeat("{name: g, launch: {command: sh}}, ", 1000) + "{}]",
			"c.yaml:1:34010: list of more than 1000 items exceeds limit 1000 (config entries per mapping or list)"},
		{"channels", "groups: [{name: a, launch: {command: sh}}]\nchannels:\n" + lines(100, "- {name: c%d, type: webhook, url: 'http://h/'}\n"),
			"groups: [{name: a, launch: {command: sh}}]\nchannels:\n" + lines(101, "- {name: c%d, type: webhook, url: 'http://h/'}\n"),
			"c.yaml:103:4: channels: 101 exceeds limit 100 (channels)"},
		{"health checks", group("  health_checks:\n" + lines(32, "  - {type: tcp, port: \"%d\"}\n")),
			group("  health_checks:\n" + lines(33, "  - {type: tcp, port: \"%d\"}\n")),
			"c.yaml:38:6: groups[0].health_checks: 33 exceeds limit 32 (health checks per group)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse("c.yaml", []byte(tt.under)); err != nil && strings.Contains(err.Error(), "exceeds limit") {
				t.Errorf("just under the limit: %.300v", err)
			}
			_, err := Parse("c.yaml", []byte(tt.over))
			if err == nil || err.Error() != tt.want {
				t.Errorf("just over the limit:\n got %.300v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestInvalidUTF8 is the report of a file with a corrupted byte found
// valid: the parser reads it as U+FFFD.
func TestInvalidUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	data := group("    env:\n      NAME: café\n      OTHER: caf\xe9\n")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":7:17: invalid UTF-8 (byte 0xe9): the file must be UTF-8 text"; err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestByteSizeNaN: "NaNMB" read as the most negative size.
func TestByteSizeNaN(t *testing.T) {
	for _, s := range []string{"NaNMB", "NANKiB", "NaNB"} {
		if n, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) = %d", s, n)
		}
	}
}

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileFiles are the reports: a 50 MB config of junk keys (the
// parser's stack overflowed after 20 s and 4 GiB) and a 50 MB parameter
// value (accepted with 1.7 GiB resident), and a file just under the size
// limit made of junk keys. Each is refused with its message, allocating
// at most twice the size limit, whatever the file's size (a file known to
// be too large is not read at all; TestLoadReadsAtMostTheLimit covers one
// whose size is not known).
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	const fifty = 50 << 20
	junk := strings.Repeat(lines(1<<20/12, "k%07d: v\n"), 50)
	tests := []struct {
		name, data, want string
	}{
		{"junk keys", junk, "junk keys:1:1: file size exceeds limit 4194304 bytes (config file size)"},
		{"huge value", group("  parameters:\n  - name: p\n    value: " + strings.Repeat("v", fifty) + "\n"),
			"huge value:1:1: file size exceeds limit 4194304 bytes (config file size)"},
		{"junk keys under the size limit", junk[:limits.Config.Size],
			"junk keys under the size limit:1001:1: mapping of more than 1000 keys exceeds limit 1000 (config entries per mapping or list)"},
	}
	for i, tt := range tests {
		if err := os.WriteFile(filepath.Join(dir, tt.name), []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		tests[i].data = ""
	}
	junk = ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = Load(filepath.Join(dir, tt.name)) })
			if err == nil || err.Error() != filepath.Join(dir, tt.want) {
				t.Errorf("got %.300v\nwant %s", err, filepath.Join(dir, tt.want))
			}
			if n > 2*uint64(limits.Config.Size) {
				t.Errorf("allocated %d MiB to refuse it", n>>20)
			}
			t.Logf("allocated %d KiB", n>>10)
		})
	}
}

// TestLoadReadsAtMostTheLimit proves the bound on reading: a config that
// is a pipe fed without end is refused after the limit plus one byte (and
// what the pipe holds), not read until memory runs out.
func TestLoadReadsAtMostTheLimit(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan int64)
	go func() {
		var n int64
		chunk := []byte(strings.Repeat("k: v\n", 1000))
		for {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		w.Close()
		written <- n
	}()
	path := fmt.Sprintf("/proc/self/fd/%d", r.Fd())
	_, err = Load(path)
	r.Close() // the writer's next write fails: EPIPE
	n := <-written
	if want := path + ":1:1: file size exceeds limit 4194304 bytes (config file size)"; err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	// A pipe holds 64 KiB by default, at most 1 MiB; a write is 5000.
	if max := limits.Config.Size + 1 + 1<<20 + 5000; n > max {
		t.Fatalf("wrote %d bytes into the pipe: more than the limit and the pipe's buffer", n)
	}
}
