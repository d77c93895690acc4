package local

import (
	"os"
	"strconv"
	"sync"
	"unicode/utf8"
)

// rotator is an append-only log file capped at max bytes: when the next
// byte would not fit, name.log becomes name.log.1 (name.log.1 becomes
// name.log.2 and so on, the oldest beyond keep is dropped) and a new
// name.log starts. Files are cut at the byte, not the line, so that the cap
// holds whatever the application writes. An existing file is appended to:
// an instance restarted in place keeps one history.
type rotator struct {
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func openRotator(path string, max int64, keep int) (*rotator, error) {
	if max <= 0 {
		max = DefaultLogMaxSize
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &rotator{path: path, max: max, keep: max0(keep), f: f, size: fi.Size()}, nil
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

func (r *rotator) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if r.size >= r.max {
			if err := r.rotate(); err != nil {
				return n, err
			}
		}
		chunk := p
		if room := r.max - r.size; int64(len(chunk)) > room {
			chunk = chunk[:room]
		}
		w, err := r.f.Write(chunk)
		n += w
		r.size += int64(w)
		p = p[w:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (r *rotator) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	if r.keep > 0 {
		// Renames overwrite, so the oldest kept file is simply replaced.
		for i := r.keep - 1; i >= 1; i-- {
			os.Rename(r.path+"."+strconv.Itoa(i), r.path+"."+strconv.Itoa(i+1))
		}
		if err := os.Rename(r.path, r.path+".1"); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	r.f, r.size = f, 0
	return nil
}

func (r *rotator) Close() error { return r.f.Close() }

// tailBuffer keeps the last max bytes written to it: Run's output cap. The
// end of a script's output (the error that made it fail) matters more than
// its beginning.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	// Compact only once twice the cap is buffered: amortised O(1) a byte.
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		// Do not start in the middle of a UTF-8 sequence.
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	return string(b)
}
