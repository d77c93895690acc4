package limits

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/autoheal/autoheal/internal/diag"
)

// ReadFile reads the file at path, at most lim.Size+1 bytes of it: a file
// beyond the limit is refused as *diag.Error without being read whole. A
// regular file whose size is beyond the limit is refused without reading
// any of it; one that grows while read, a FIFO or /dev/zero are cut at the
// limit plus one byte. Other problems are returned as they come from the
// os package.
func ReadFile(path string, lim Limits) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hint := int64(bytes.MinRead)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > lim.Size {
			return nil, sizeError(path, lim)
		}
		hint += st.Size() // one allocation when the size holds
	}
	return read(path, f, lim, hint)
}

// Read reads r to its end, at most lim.Size+1 bytes of it; file names the
// input in the error of one beyond the limit.
func Read(file string, r io.Reader, lim Limits) ([]byte, error) {
	return read(file, r, lim, bytes.MinRead)
}

func read(file string, r io.Reader, lim Limits, hint int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, hint))
	if _, err := buf.ReadFrom(io.LimitReader(r, lim.Size+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > lim.Size {
		return nil, sizeError(file, lim)
	}
	return buf.Bytes(), nil
}

func sizeError(file string, lim Limits) *diag.Error {
	return &diag.Error{File: file, Line: 1, Col: 1,
		Msg: fmt.Sprintf("file size exceeds limit %d bytes (%s %s)", lim.Size, lim.Kind, NameSize)}
}

// Check checks data, the whole text of file, against lim before it is
// parsed: its size, that it is UTF-8 text YAML allows, and, in one pass over the text that
// keeps a few hundred bytes of state, the nesting depth, the size of every
// scalar and the number of keys and list items. The first problem is
// returned, at its line and column (columns count characters, as the YAML
// parser's do); nil means the parser may be run.
func Check(file string, data []byte, lim Limits) *diag.Error {
	if int64(len(data)) > lim.Size {
		return sizeError(file, lim)
	}
	if err := checkText(file, data); err != nil {
		return err
	}
	s := scanner{lim: lim, file: file, data: data, expectChild: true, scalarLine: 1}
	s.run()
	return s.err
}

// checkText finds the first byte that is not part of valid UTF-8, or the
// first character YAML does not allow (C0 and C1 controls other than tab,
// line feed, carriage return and NEL; DEL; U+FFFE and U+FFFF). The YAML
// parser would turn a bad byte into U+FFFD and accept the file, so a config
// with a corrupted byte would silently carry a different value than
// written; controls it reads in ways of its own ("-\x00" is a list item).
func checkText(file string, data []byte) *diag.Error {
	line, lineStart := 1, 0
	for i := 0; i < len(data); {
		r, size := rune(data[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(data[i:])
		}
		msg := ""
		switch {
		case r == utf8.RuneError && size == 1:
			msg = fmt.Sprintf("invalid UTF-8 (byte 0x%02x): the file must be UTF-8 text", data[i])
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f, r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfffe, r == 0xffff:
			msg = fmt.Sprintf("control character %U is not allowed in YAML", r)
		}
		if msg != "" {
			col := utf8.RuneCount(data[lineStart:i]) + 1
			return &diag.Error{File: file, Line: line, Col: col, Msg: msg}
		}
		if r == '\n' {
			line, lineStart = line+1, i+1
		}
		i += size
	}
	return nil
}
