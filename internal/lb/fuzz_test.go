package lb

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// FuzzRequestHead feeds arbitrary bytes to the request parser, the way a
// client's first bytes reach it, and checks what must hold whatever they
// are:
//
//   - no panic; the head kept is at most max bytes, and a head of more
//     lines than that is refused as too large;
//   - what the smuggling rules refuse is never accepted: both
//     Content-Length and Transfer-Encoding, a space before a header's
//     colon, a folded header line, a bare CR or a NUL;
//   - a head both this parser and net/http's accept is read alike: method,
//     target, version and, above all, the body's framing (where a request
//     ends is what smuggling plays on);
//   - the head forwarded to a target is clean (CRLF lines with no other CR
//     or LF) and net/http reads the same framing from it;
//   - a chunked body both decoders accept decodes to the same bytes.
//
// Its seed corpus is testdata/fuzz/FuzzRequestHead: plain requests, the
// smuggling shapes, and each input that found a bug. Run it with:
//
//	go test -run '^$' -fuzz FuzzRequestHead -parallel 1 -timeout 0 ./internal/lb/
func FuzzRequestHead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 2048
		var h head
		// A small reader buffer makes long lines arrive in pieces.
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		err := h.readHead(br, max, true)
		if len(h.buf) > max {
			t.Fatalf("kept %d bytes of head, max %d", len(h.buf), max)
		}
		lines, complete := headLines(in)
		if err != nil {
			if complete && errors.Is(err, errHeadTooLarge) && headBytes(lines) <= max {
				t.Fatalf("head of %d bytes refused as larger than %d", headBytes(lines), max)
			}
			return
		}
		if !complete {
			t.Fatalf("accepted a head that has no end: %q", in)
		}
		if headBytes(lines) > max {
			t.Fatalf("accepted a head of %d bytes, max %d", headBytes(lines), max)
		}
		checkRefusals(t, lines)

		// Both parsers accept: they must read the request alike.
		hr, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if herr == nil {
			compareStd(t, &h, hr, "client's head")
		}

		// What goes to the target.
		var fw bytes.Buffer
		w := bufio.NewWriter(&fw)
		cc := &clientConn{l: &listener{forwardedTail: "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n", hostFallback: "127.0.0.1:80"}, ip: []byte("127.0.0.1")}
		cc.req = h
		cc.writeHead(w)
		w.Flush()
		out := fw.Bytes()
		for _, l := range bytes.SplitAfter(out[:len(out)-2], []byte("\r\n")) {
			if len(l) == 0 {
				continue // after the last line
			}
			if !bytes.HasSuffix(l, []byte("\r\n")) || bytes.ContainsAny(l[:len(l)-2], "\r\n\x00") {
				t.Fatalf("forwarded line %q of %q", l, out)
			}
		}
		if fr, ferr := http.ReadRequest(bufio.NewReader(bytes.NewReader(out))); ferr == nil {
			compareStd(t, &h, fr, "forwarded head")
		}

		if h.chunked && herr == nil {
			rest, _ := io.ReadAll(br) // the body, and what may follow it
			var ours bytes.Buffer
			ow := bufio.NewWriter(&ours)
			_, oerr := copyChunked(ow, bufio.NewReaderSize(bytes.NewReader(rest), 16), 0, true, nil)
			ow.Flush()
			theirs, terr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(rest)))
			if oerr == nil && terr == nil && !bytes.Equal(ours.Bytes(), theirs) {
				t.Fatalf("chunked body %q: decoded %q, net/http %q", rest, ours.Bytes(), theirs)
			}
		}
	})
}

// headLines splits in into the lines of a request head the way RFC 9112
// reads them (leading empty lines skipped, each line ending in LF), up to
// and with the empty line that ends the head, when it came (complete).
func headLines(in []byte) (lines [][]byte, complete bool) {
	first := true
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			return lines, false
		}
		l := in[:i+1]
		in = in[i+1:]
		empty := len(l) == 1 || (len(l) == 2 && l[0] == '\r')
		if empty && first {
			continue
		}
		first = false
		lines = append(lines, l)
		if empty {
			return lines, true
		}
	}
	return lines, false
}

// headBytes is what max_header_bytes counts: the request line, the
// headers and the empty line after them.
func headBytes(lines [][]byte) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

// checkRefusals fails when an accepted head holds what the smuggling rules
// refuse.
func checkRefusals(t *testing.T, lines [][]byte) {
	t.Helper()
	var cl, te bool
	lines = lines[:len(lines)-1] // without the empty line
	for i, l := range lines {
		body := bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
		if bytes.ContainsAny(body, "\r\x00") {
			t.Fatalf("accepted a line with a bare CR or a NUL: %q", l)
		}
		if i == 0 {
			continue
		}
		if body[0] == ' ' || body[0] == '\t' {
			t.Fatalf("accepted a folded header line %q", l)
		}
		name, _, ok := bytes.Cut(body, []byte(":"))
		if !ok {
			t.Fatalf("accepted a header line without a colon: %q", l)
		}
		if bytes.ContainsAny(name, " \t") {
			t.Fatalf("accepted white space before a header's colon: %q", l)
		}
		switch strings.ToLower(string(name)) {
		case "content-length":
			cl = true
		case "transfer-encoding":
			te = true
		}
	}
	if cl && te {
		t.Fatalf("accepted both Content-Length and Transfer-Encoding: %q", lines)
	}
}

// compareStd fails when net/http read a request differently from h.
func compareStd(t *testing.T, h *head, r *http.Request, what string) {
	t.Helper()
	if string(h.bytes(h.first[0])) != r.Method {
		t.Fatalf("%s: method %q, net/http %q", what, h.bytes(h.first[0]), r.Method)
	}
	if string(h.bytes(h.first[1])) != r.RequestURI {
		t.Fatalf("%s: target %q, net/http %q", what, h.bytes(h.first[1]), r.RequestURI)
	}
	chunked := len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked"
	if h.chunked != chunked {
		t.Fatalf("%s: chunked %v, net/http's transfer encoding %q", what, h.chunked, r.TransferEncoding)
	}
	if !h.chunked {
		cl := max(h.contentLength, 0)
		if cl != r.ContentLength {
			t.Fatalf("%s: content length %d, net/http %d", what, cl, r.ContentLength)
		}
	}
	if what == "client's head" {
		if want := r.ProtoMinor == 0; h.http10 != want {
			t.Fatalf("%s: HTTP/1.0 %v, net/http's %s", what, h.http10, r.Proto)
		}
		if h.close != r.Close {
			t.Fatalf("%s: close %v, net/http %v", what, h.close, r.Close)
		}
		if h.host.end != 0 && r.URL.Host == "" && string(h.bytes(h.host)) != r.Host {
			t.Fatalf("%s: host %q, net/http %q", what, h.bytes(h.host), r.Host)
		}
	}
}
