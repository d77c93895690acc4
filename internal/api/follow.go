package api

import (
	"bytes"
	"io"
	"os"
)

// follower follows one log file as tail -F does, the only such code in
// autoheal: it keeps the file open and reads what is appended. When the
// name comes to point to another file (the shim rotated the log: name.log
// became name.log.1 and a new name.log started), it reads what is left of
// the old file, whose writer closed it before the rename, then the new one
// from its start; a file cut short in place is read again from its start.
// A file that does not exist yet is waited for. Only whole lines are
// emitted: the rotator cuts files at the byte, so a line may end in the
// next file; a line longer than maxLine is emitted in pieces.
type follower struct {
	path    string
	f       *os.File // nil until the file exists
	partial []byte
	buf     []byte
}

// maxLine bounds the part of a line kept while its end is awaited.
const maxLine = 1 << 20

// tailWindow bounds what the first lines of a tail are looked for in.
const tailWindow = 1 << 20

// openFollower opens path, positioned at its end.
func openFollower(path string) *follower {
	fw := &follower{path: path, buf: make([]byte, 32<<10)}
	if f, err := os.Open(path); err == nil {
		f.Seek(0, io.SeekEnd)
		fw.f = f
	}
	return fw
}

// Close closes the file.
func (fw *follower) Close() {
	if fw.f != nil {
		fw.f.Close()
		fw.f = nil
	}
}

// tail emits the last n lines before the follower's position (within the
// last tailWindow bytes); a last line without its newline is emitted too.
func (fw *follower) tail(n int, emit func([]byte) error) error {
	if fw.f == nil || n == 0 {
		return nil
	}
	end, err := fw.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil
	}
	start := max(end-tailWindow, 0)
	b := make([]byte, end-start)
	if _, err := fw.f.ReadAt(b, start); err != nil && err != io.EOF {
		return nil
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		if err := emit(bytes.TrimSuffix(l, []byte("\n"))); err != nil {
			return err
		}
	}
	return nil
}

// poll emits the lines appended since the last poll, across a rotation.
// Its error is emit's.
func (fw *follower) poll(emit func([]byte) error) error {
	if fw.f == nil {
		f, err := os.Open(fw.path)
		if err != nil {
			return nil // not yet
		}
		fw.f = f
	}
	if err := fw.drain(emit); err != nil {
		return err
	}
	now, err := os.Stat(fw.path)
	if err != nil {
		return nil // renamed, its successor not created yet
	}
	open, err := fw.f.Stat()
	if err != nil {
		return nil
	}
	if !os.SameFile(now, open) {
		// Rotated: the old file is complete (drained above); the new one
		// is read from its start.
		fw.Close()
		return fw.poll(emit)
	}
	if pos, err := fw.f.Seek(0, io.SeekCurrent); err == nil && now.Size() < pos {
		// Cut short in place (copytruncate): start again.
		fw.f.Seek(0, io.SeekStart)
		fw.partial = fw.partial[:0]
		return fw.drain(emit)
	}
	return nil
}

// drain reads to the end of the open file and emits its whole lines.
func (fw *follower) drain(emit func([]byte) error) error {
	for {
		n, err := fw.f.Read(fw.buf)
		if n > 0 {
			if eerr := fw.split(fw.buf[:n], emit); eerr != nil {
				return eerr
			}
		}
		if err != nil {
			// io.EOF: all read; another error ends this poll, the next
			// one tries again.
			return nil
		}
	}
}

// split emits the whole lines of partial+b and keeps the rest.
func (fw *follower) split(b []byte, emit func([]byte) error) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			fw.partial = append(fw.partial, b...)
			if len(fw.partial) >= maxLine {
				err := emit(fw.partial)
				fw.partial = fw.partial[:0]
				return err
			}
			return nil
		}
		line := b[:i]
		if len(fw.partial) > 0 {
			line = append(fw.partial, line...)
		}
		if err := emit(line); err != nil {
			return err
		}
		fw.partial = fw.partial[:0]
		b = b[i+1:]
	}
	return nil
}
