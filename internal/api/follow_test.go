package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logFile is a log written the way the shim writes it: appended, and
// rotated by renaming name.log to name.log.1 and starting a new one.
type logFile struct {
	t    *testing.T
	path string
	f    *os.File
}

func newLogFile(t *testing.T, path string) *logFile {
	l := &logFile{t: t, path: path}
	l.open()
	return l
}

func (l *logFile) open() {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		l.t.Fatal(err)
	}
	l.f = f
}

func (l *logFile) write(s string) {
	if _, err := l.f.WriteString(s); err != nil {
		l.t.Fatal(err)
	}
}

func (l *logFile) rotate() {
	l.f.Close()
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.t.Fatal(err)
	}
	l.open()
}

// collect polls fw and returns the lines it emitted.
func collect(t *testing.T, fw *follower) []string {
	t.Helper()
	var got []string
	if err := fw.poll(func(b []byte) error { got = append(got, string(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFollower(t *testing.T) {
	tests := []struct {
		name  string
		steps func(l *logFile)
		want  []string
	}{
		{"appended", func(l *logFile) { l.write("a\nb\n") }, []string{"a", "b"}},
		{"partial line waits", func(l *logFile) { l.write("a\nb") }, []string{"a"}},
		// The bug the old follower had: it compared sizes, so a new file
		// already longer than the old offset hid the rotation, and what
		// the old file got last was lost.
		{"rotated, new file longer", func(l *logFile) {
			l.write("old-1\nold-2\n")
			l.rotate()
			l.write(strings.Repeat("new\n", 50))
		}, append([]string{"old-1", "old-2"}, strings.Split(strings.TrimSuffix(strings.Repeat("new\n", 50), "\n"), "\n")...)},
		{"rotated twice between polls", func(l *logFile) {
			l.write("a\n")
			l.rotate()
			l.write("b\n")
			l.rotate()
			l.write("c\n")
		}, []string{"a", "c"}}, // b's file is name.log.2 by now: gone from view, as with tail -F
		{"line cut by the rotation", func(l *logFile) {
			l.write("first half ")
			l.rotate()
			l.write("second half\n")
		}, []string{"first half second half"}},
		{"truncated in place", func(l *logFile) {
			l.f.Truncate(0)
			l.write("x\n")
		}, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stdout.log")
			l := newLogFile(t, path)
			l.write("before\n")
			fw := openFollower(path)
			defer fw.Close()
			tt.steps(l)
			got := collect(t, fw)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFollowerWaitsForTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	fw := openFollower(path)
	defer fw.Close()
	if got := collect(t, fw); len(got) != 0 {
		t.Fatalf("no file yet: %q", got)
	}
	l := newLogFile(t, path)
	l.write("hello\n")
	if got := collect(t, fw); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("created later: %q", got)
	}
}

func TestFollowerTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	l := newLogFile(t, path)
	for i := range 10 {
		l.write(fmt.Sprintf("line %d\n", i))
	}
	l.write("unfinished")
	fw := openFollower(path)
	defer fw.Close()
	var got []string
	fw.tail(3, func(b []byte) error { got = append(got, string(b)); return nil })
	if strings.Join(got, "|") != "line 8|line 9|unfinished" {
		t.Errorf("tail 3: %q", got)
	}
}

// TestLogsFollowAcrossRotation follows an instance's log through the API
// while it is rotated: every line arrives once, in order.
func TestLogsFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "stdout.log")
	l := newLogFile(t, out)
	l.write("start\n")
	st := testJournal(t)
	pet := newFakeGroup("pet", "", petA)
	st.PutInstance(context.Background(), pet.instances[0])
	srv := adminServer(t, Deps{Journal: st, Groups: []Group{pet}, Logger: slog.New(slog.DiscardHandler),
		LogFiles: func(string) (string, string) { return out, filepath.Join(dir, "stderr.log") }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/logs?instance="+petA+"&stream=stdout&tail=10&follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "start" {
		t.Fatalf("tail: %q", got)
	}
	// Each round: lines the follower reads, then one more written just
	// before the rotation (the old file's last line, which it must still
	// read from the old file), then the next round in the new file.
	for round := range 5 {
		var want []string
		for i := range 20 {
			line := fmt.Sprintf("round %d line %d", round, i)
			want = append(want, line)
			l.write(line + "\n")
		}
		for i, w := range want {
			if got := next(); got != w {
				t.Fatalf("round %d line %d: %q, want %q", round, i, got, w)
			}
		}
		last := fmt.Sprintf("round %d last line, written just before the rotation", round)
		l.write(last + "\n")
		l.rotate()
		l.write(fmt.Sprintf("round %d first line of the new file\n", round))
		for _, w := range []string{last, fmt.Sprintf("round %d first line of the new file", round)} {
			if got := next(); got != w {
				t.Fatalf("across the rotation: %q, want %q", got, w)
			}
		}
	}
	cancel()
	io.Copy(io.Discard, resp.Body)
}
