package lb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// HTTP/1.x message heads, parsed in place. A head is read once into buf,
// which is reused for the connection's next message, and every field is a
// span of it: parsing a request allocates nothing once buf and hdrs have
// grown to the connection's usual size.

// span is a slice of a head's buf.
type span struct{ start, end int }

// field is one header line.
type field struct {
	name, value span
}

// head is a parsed request or response head.
type head struct {
	buf []byte
	// first is the start line: method, target, version for a request;
	// version, status code, reason for a response.
	first [3]span
	hdrs  []field

	// Derived from the headers.
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool // the sender asked to close after this message
	keepAlive     bool // HTTP/1.0 sender asked to keep the connection
	upgrade       bool // Connection: upgrade with an Upgrade header
	http10        bool
	expect100     bool
	status        int    // responses
	host          span   // requests; empty when absent
	connTokens    []span // other Connection tokens: headers to drop
}

// Head parse errors, mapped to responses by the proxy.
var (
	errHeadTooLarge  = errors.New("message head too large")
	errBadHead       = errors.New("malformed message head")
	errUnsupportedTE = errors.New("unsupported transfer-encoding")
)

// headError says what was wrong with a head, for the log and the 400 body.
type headError struct {
	kind error
	why  string
}

func (e *headError) Error() string { return e.kind.Error() + ": " + e.why }
func (e *headError) Unwrap() error { return e.kind }

func badHead(format string, args ...any) error {
	return &headError{kind: errBadHead, why: fmt.Sprintf(format, args...)}
}

func (h *head) bytes(s span) []byte { return h.buf[s.start:s.end] }

func (h *head) reset() {
	h.buf = h.buf[:0]
	h.hdrs = h.hdrs[:0]
	h.connTokens = h.connTokens[:0]
	h.contentLength = -1
	h.chunked, h.close, h.keepAlive, h.upgrade, h.http10, h.expect100 = false, false, false, false, false, false
	h.status = 0
	h.host = span{}
}

// readHead reads a message head of at most max bytes from r. request says
// which start line to expect. A clean EOF before the first byte returns
// io.EOF.
func (h *head) readHead(r *bufio.Reader, max int, request bool) error {
	h.reset()
	first := true
	for {
		start := len(h.buf)
		// A line longer than r's buffer arrives in pieces.
		for {
			part, err := r.ReadSlice('\n')
			if len(h.buf)+len(part) > max {
				return &headError{kind: errHeadTooLarge, why: fmt.Sprintf("more than %d bytes", max)}
			}
			h.buf = append(h.buf, part...)
			if err == nil {
				break
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && len(h.buf) == 0 {
				return io.EOF
			}
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		line := h.buf[start:]
		n := len(line) - 1 // without \n
		if n > 0 && line[n-1] == '\r' {
			n--
		}
		if bytes.IndexByte(line[:n], '\r') >= 0 || bytes.IndexByte(line[:n], 0) >= 0 {
			// RFC 9112 2.2 and RFC 9110 5.5: a bare CR or a NUL is refused
			// rather than forwarded, as a target may take a bare CR for a
			// line end and read other headers than the proxy did.
			return badHead("bare CR or NUL in line %q", clip(line[:n]))
		}
		if first {
			if n == 0 && request && start == 0 {
				// RFC 9112 2.2: ignore empty lines before a request line.
				h.buf = h.buf[:0]
				continue
			}
			first = false
			if err := h.parseStart(start, start+n, request); err != nil {
				return err
			}
			continue
		}
		if n == 0 {
			return h.derive(request)
		}
		if err := h.parseField(start, start+n); err != nil {
			return err
		}
	}
}

func (h *head) parseStart(start, end int, request bool) error {
	line := h.buf[start:end]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return badHead("start line %q", clip(line))
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if request {
		if sp2 <= 0 {
			return badHead("request line %q", clip(line))
		}
		h.first[0] = span{start, start + sp1}
		h.first[1] = span{start + sp1 + 1, start + sp1 + 1 + sp2}
		h.first[2] = span{start + sp1 + 2 + sp2, end}
		if bytes.IndexByte(h.bytes(h.first[2]), ' ') >= 0 || !validMethod(h.bytes(h.first[0])) {
			return badHead("request line %q", clip(line))
		}
		return h.version(h.bytes(h.first[2]))
	}
	h.first[0] = span{start, start + sp1}
	if err := h.version(h.bytes(h.first[0])); err != nil {
		return err
	}
	codeEnd := len(rest)
	if sp2 >= 0 {
		codeEnd = sp2
		h.first[2] = span{start + sp1 + 2 + sp2, end}
	} else {
		h.first[2] = span{end, end}
	}
	h.first[1] = span{start + sp1 + 1, start + sp1 + 1 + codeEnd}
	code := rest[:codeEnd]
	if len(code) != 3 {
		return badHead("status line %q", clip(line))
	}
	st := 0
	for _, c := range code {
		if c < '0' || c > '9' {
			return badHead("status line %q", clip(line))
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 {
		return badHead("status line %q", clip(line))
	}
	h.status = st
	return nil
}

func (h *head) version(v []byte) error {
	switch string(v) { // no allocation: the compiler compares in place
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return badHead("unsupported version %q", clip(v))
	}
	return nil
}

func (h *head) parseField(start, end int) error {
	line := h.buf[start:end]
	if line[0] == ' ' || line[0] == '\t' {
		// Obsolete line folding: RFC 9112 5.2 lets a proxy reject it.
		return badHead("folded header line")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return badHead("header line %q", clip(line))
	}
	for _, c := range line[:colon] {
		if !isTokenChar(c) {
			// "Content-Length : 5" and the like are how requests are
			// smuggled past proxies that read them differently.
			return badHead("header name %q", clip(line[:colon]))
		}
	}
	vs, ve := colon+1, len(line)
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	h.hdrs = append(h.hdrs, field{name: span{start, start + colon}, value: span{start + vs, start + ve}})
	return nil
}

// derive reads the headers that frame the message and steer the proxy.
func (h *head) derive(request bool) error {
	te := false
	for i := range h.hdrs {
		f := &h.hdrs[i]
		name, value := h.bytes(f.name), h.bytes(f.value)
		switch len(name) {
		case 4:
			if request && eqFold(name, "host") {
				if h.host.end != 0 {
					return badHead("two Host headers")
				}
				h.host = f.value
			}
		case 6:
			if request && eqFold(name, "expect") && eqFold(value, "100-continue") {
				h.expect100 = true
			}
		case 7:
			if eqFold(name, "upgrade") && len(value) > 0 {
				h.upgrade = true // confirmed by a Connection: upgrade token below
			}
		case 10:
			if eqFold(name, "connection") {
				h.connectionTokens(f.value)
			}
		case 14:
			if eqFold(name, "content-length") {
				n, ok := parseLength(value)
				if !ok {
					return badHead("Content-Length %q", clip(value))
				}
				if h.contentLength >= 0 && h.contentLength != n {
					return badHead("conflicting Content-Length headers")
				}
				h.contentLength = n
			}
		case 17:
			if eqFold(name, "transfer-encoding") {
				te = true
				if eqFold(value, "chunked") {
					h.chunked = true
				} else if request {
					return &headError{kind: errUnsupportedTE, why: fmt.Sprintf("Transfer-Encoding %q", clip(value))}
				} else {
					h.chunked = false // gzip etc.: read until close
				}
			}
		}
	}
	if te && h.http10 {
		// RFC 9112 6.1: HTTP/1.0 has no Transfer-Encoding, and its
		// recipients (net/http among them) ignore it: the framing is
		// faulty. A request is refused; a response is read until close.
		if request {
			return badHead("Transfer-Encoding in an HTTP/1.0 request")
		}
		h.chunked = false
		h.contentLength = -1
	}
	if te && h.contentLength >= 0 {
		if request {
			// Both framings at once is the classic smuggling request.
			return badHead("both Content-Length and Transfer-Encoding")
		}
		h.contentLength = -1 // RFC 9112 6.3: Transfer-Encoding wins
	}
	if !h.upgradeToken() {
		h.upgrade = false
	}
	if request && h.http10 && !h.keepAlive {
		h.close = true
	}
	return nil
}

// connectionTokens reads one Connection header's comma-separated tokens.
func (h *head) connectionTokens(v span) {
	b := h.buf
	i := v.start
	for i < v.end {
		for i < v.end && (b[i] == ' ' || b[i] == '\t' || b[i] == ',') {
			i++
		}
		j := i
		for j < v.end && b[j] != ',' {
			j++
		}
		k := j
		for k > i && (b[k-1] == ' ' || b[k-1] == '\t') {
			k--
		}
		if k > i {
			tok := b[i:k]
			switch {
			case eqFold(tok, "close"):
				h.close = true
			case eqFold(tok, "keep-alive"):
				h.keepAlive = true
			case eqFold(tok, "upgrade"):
				h.connTokens = append(h.connTokens, span{-1, -1}) // marker: upgrade asked
			default:
				h.connTokens = append(h.connTokens, span{i, k})
			}
		}
		i = j + 1
	}
}

func (h *head) upgradeToken() bool {
	for _, t := range h.connTokens {
		if t.start == -1 {
			return true
		}
	}
	return false
}

// listedInConnection reports whether name is one of the Connection tokens:
// such headers are for this hop only (RFC 9110 7.6.1).
func (h *head) listedInConnection(name []byte) bool {
	for _, t := range h.connTokens {
		if t.start >= 0 && bytes.EqualFold(h.buf[t.start:t.end], name) {
			return true
		}
	}
	return false
}

// hopByHop reports whether a header is for one connection only and must
// not be forwarded. Transfer-Encoding is handled by the proxy itself
// (chunked bodies are forwarded as they are), Upgrade only on upgrades.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return eqFold(name, "te")
	case 7:
		return eqFold(name, "trailer") || eqFold(name, "upgrade")
	case 10:
		return eqFold(name, "connection") || eqFold(name, "keep-alive")
	case 16:
		return eqFold(name, "proxy-connection")
	case 17:
		return eqFold(name, "transfer-encoding")
	case 19:
		return eqFold(name, "proxy-authorization")
	}
	return false
}

// idempotent methods may be sent again after a connection broke before
// any response byte (RFC 9110 9.2.2).
func idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// eqFold compares b with the lower-case ASCII string s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func validMethod(m []byte) bool {
	for _, c := range m {
		if !isTokenChar(c) {
			return false
		}
	}
	return len(m) > 0
}

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// clip bounds what of a bad line goes into an error message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// Body framing.

// copyChunked forwards a chunked body as it is, chunk by chunk, through the
// last chunk and the trailer section. max bounds the body's total size
// (0: none); onBlock (when not nil) is flushed before a read that may
// block, so that what it holds goes out and the body streams.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, max int64, dechunk bool, onBlock *bufio.Writer) (int64, error) {
	var total int64
	for {
		if src.Buffered() == 0 && onBlock != nil {
			onBlock.Flush()
		}
		line, err := src.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return total, badHead("chunk size line too long")
			}
			return total, unexpected(err)
		}
		size, ok := chunkSize(line)
		if !ok {
			return total, badHead("chunk size line %q", clip(line))
		}
		if !dechunk {
			if _, err := dst.Write(line); err != nil {
				return total, err
			}
		}
		if size == 0 {
			break
		}
		total += size
		if max > 0 && total > max {
			return total, errBodyTooLarge
		}
		if err := copyN(dst, src, size, onBlock); err != nil {
			return total, err
		}
		// The CRLF after the chunk data.
		crlf, err := src.ReadSlice('\n')
		if err != nil {
			return total, unexpected(err)
		}
		if !dechunk {
			if _, err := dst.Write(crlf); err != nil {
				return total, err
			}
		}
	}
	// Trailer section, up to the empty line.
	for {
		if src.Buffered() == 0 && onBlock != nil {
			onBlock.Flush()
		}
		line, err := src.ReadSlice('\n')
		if err != nil {
			return total, unexpected(err)
		}
		if !dechunk {
			if _, err := dst.Write(line); err != nil {
				return total, err
			}
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return total, nil
		}
	}
}

var errBodyTooLarge = errors.New("body too large")

func chunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			// Chunk extensions (";..."), whitespace and the line end.
			if digits == 0 || (c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t') {
				return 0, false
			}
			return n, true
		}
		if digits == 15 {
			return 0, false
		}
		digits++
		n = n<<4 | int64(d)
	}
	return 0, false
}

// copyN copies exactly n bytes from src to dst, streaming: before a read
// that may block it flushes onBlock.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, onBlock *bufio.Writer) error {
	for n > 0 {
		if src.Buffered() == 0 && onBlock != nil {
			onBlock.Flush()
		}
		if _, err := src.Peek(1); err != nil {
			return unexpected(err)
		}
		avail := src.Buffered()
		if int64(avail) > n {
			avail = int(n)
		}
		b, _ := src.Peek(avail)
		if _, err := dst.Write(b); err != nil {
			return err
		}
		src.Discard(avail)
		n -= int64(avail)
	}
	return nil
}

// copyUntilEOF streams src to dst until src ends.
func copyUntilEOF(dst *bufio.Writer, src *bufio.Reader, onBlock *bufio.Writer) error {
	for {
		if src.Buffered() == 0 && onBlock != nil {
			onBlock.Flush()
		}
		if _, err := src.Peek(1); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		b, _ := src.Peek(src.Buffered())
		if _, err := dst.Write(b); err != nil {
			return err
		}
		src.Discard(len(b))
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
