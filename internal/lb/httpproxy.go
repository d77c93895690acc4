package lb

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// clientConn is one client connection of an http listener and the state
// reused by each of its requests.
type clientConn struct {
	l     *listener
	tc    *timedConn
	br    *bufio.Reader
	bw    *bufio.Writer
	req   head
	resp  head
	ip    []byte // client address, for X-Forwarded-For
	tried []*target
	xff   []byte
}

// serveOne proxies one request and reports whether the connection may
// carry another.
func (cc *clientConn) serveOne() bool {
	l := cc.l
	// Wait for the next request under the idle timeout.
	if _, err := cc.br.Peek(1); err != nil {
		return false
	}
	// Usually the whole head is already here and parses without another
	// read; else it must arrive within the header timeout, so that a
	// client trickling bytes cannot hold the connection.
	if b, _ := cc.br.Peek(cc.br.Buffered()); !bytes.Contains(b, crlfcrlf) {
		cc.tc.readBy(readDeadline(phaseHead, time.Now(), &l.cfg))
	}
	err := cc.req.readHead(cc.br, int(l.cfg.MaxHeaderBytes), true)
	cc.tc.auto()
	cc.takeWriter()
	if err != nil {
		switch {
		case errors.Is(err, io.EOF):
		case errors.Is(err, errHeadTooLarge):
			cc.elbError(431, "request head too large")
		case errors.Is(err, errUnsupportedTE):
			cc.elbError(501, "transfer-encoding not supported")
		case errors.Is(err, errBadHead):
			cc.elbError(400, err.Error())
		case errors.Is(err, os.ErrDeadlineExceeded):
			cc.elbError(408, "request head not received in time")
		}
		return false
	}
	req := &cc.req
	tg := l.tg
	tg.metrics.requests.Add(1)
	if !req.http10 && req.host.end == 0 {
		cc.elbError(400, "missing Host header")
		return false
	}
	if max := int64(l.cfg.MaxBodyBytes); max > 0 && req.contentLength > max {
		cc.elbError(413, "request body too large")
		return false
	}
	return cc.forward()
}

var crlfcrlf = []byte("\r\n\r\n")

// forward sends the request to a target, retrying where that is safe,
// and relays the response.
func (cc *clientConn) forward() bool {
	l, tg, req := cc.l, cc.l.tg, &cc.req
	hasBody := req.chunked || req.contentLength > 0
	retryable := !hasBody && idempotent(req.bytes(req.first[0]))
	holdUntil := time.Now().Add(tg.cfg.HoldTimeout.D())
	cc.tried = cc.tried[:0]
	attempts := 0
	// redial is a target to try again on a new connection: a pooled one
	// to it broke before any answer.
	var redial *target
	for {
		var t *target
		fresh := false
		if redial != nil && tg.inRotation(redial) {
			t, fresh = redial, true
		} else {
			t = tg.pick(cc.tried)
		}
		redial = nil
		if t == nil {
			if len(cc.tried) > 0 && len(tg.rot.Load().targets) > len(cc.tried) {
				continue // the rotation changed under us
			}
			// No healthy target (left): hold the request for one.
			if tg.hold(l.ctx, holdUntil) {
				cc.tried = cc.tried[:0]
				continue
			}
			if len(cc.tried) > 0 {
				return cc.elbError(502, "no target could be reached")
			}
			return cc.elbError(503, "no healthy target")
		}
		attempts++
		bc, reused, err := cc.conn(t, retryable, fresh)
		if err != nil {
			tg.connectFailed(t, err)
			cc.tried = append(cc.tried, t)
			if attempts <= *tg.cfg.Retries {
				tg.metrics.retries.Add(1)
				continue
			}
			return cc.elbError(502, "target connect failed")
		}
		t.inflight.Add(1)
		keep, retry := cc.exchange(t, bc)
		t.inflight.Add(-1)
		if !retry {
			return keep
		}
		if reused && retryable {
			// A keep-alive connection the target had closed: it restarted,
			// died or timed the connection out. That is not a failed
			// attempt, and the target's other pooled connections may be
			// just as stale: try it again on a new connection, which tells
			// (a dead target refuses it and leaves the rotation, and the
			// request goes to another target or is held for one, rather
			// than spending its retries on dead connections).
			attempts--
			redial = t
			tg.metrics.retries.Add(1)
			continue
		}
		cc.tried = append(cc.tried, t)
		if !retryable || attempts > *tg.cfg.Retries {
			return cc.elbError(502, "target closed the connection")
		}
		tg.metrics.retries.Add(1)
	}
}

// conn returns a connection to t: an idle one when there is one recent
// enough for the request (unless fresh), else a new one. reused tells
// which.
func (cc *clientConn) conn(t *target, retryable, fresh bool) (*backendConn, bool, error) {
	now := time.Now()
	maxAge := idleLimit
	if !retryable {
		maxAge = freshFor
	}
	if !fresh {
		if bc := t.pool.get(now, maxAge); bc != nil {
			return bc, true, nil
		}
	}
	d := net.Dialer{Timeout: t.tg.cfg.ConnectTimeout.D()}
	c, err := d.DialContext(cc.l.ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	tc := &timedConn{Conn: c, idle: t.tg.cfg.ResponseTimeout.D()}
	bc := &backendConn{t: t, c: tc, br: bufio.NewReaderSize(tc, 8192), bw: bufio.NewWriterSize(tc, 8192), lastUsed: now}
	if !t.pool.track(bc) {
		c.Close()
		return nil, false, errors.New("target is draining")
	}
	return bc, false, nil
}

// exchange sends the request on bc and relays the response. retry is true
// when the connection failed before any response byte arrived and nothing
// was sent to the client: the caller may try another target.
func (cc *clientConn) exchange(t *target, bc *backendConn) (keep, retry bool) {
	req := &cc.req
	sent := time.Now()
	cc.writeHead(bc.bw)
	if req.expect100 {
		// Let the target decide whether it wants the body.
		if err := bc.bw.Flush(); err != nil {
			bc.close()
			return false, true
		}
		if err := cc.resp.readHead(bc.br, 64<<10, false); err != nil {
			bc.close()
			return false, isBroken(err)
		}
		if cc.resp.status != 100 {
			// A final answer without the body: relay it and close, since
			// the client may still send the body.
			req.close = true
			return cc.relay(t, bc, sent, true)
		}
		cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := cc.bw.Flush(); err != nil {
			bc.close()
			return false, false
		}
	}
	if err := cc.sendBody(bc); err != nil {
		bc.close()
		if errors.Is(err, errBodyTooLarge) {
			return cc.elbError(413, "request body too large"), false
		}
		return false, false // the client went away or sent a bad body
	}
	if err := bc.bw.Flush(); err != nil {
		bc.close()
		return false, true
	}
	if !req.expect100 {
		if err := cc.resp.readHead(bc.br, 64<<10, false); err != nil {
			bc.close()
			if isTimeout(err) {
				return cc.elbError(504, "target did not answer in time"), false
			}
			if isBroken(err) {
				return false, true
			}
			return cc.elbError(502, "invalid response from target"), false
		}
	}
	return cc.relay(t, bc, sent, false)
}

// sendBody streams the request body to the target.
func (cc *clientConn) sendBody(bc *backendConn) error {
	req := &cc.req
	flush := bc.bw
	switch {
	case req.chunked:
		_, err := copyChunked(bc.bw, cc.br, int64(cc.l.cfg.MaxBodyBytes), false, flush)
		return err
	case req.contentLength > 0:
		return copyN(bc.bw, cc.br, req.contentLength, flush)
	}
	return nil
}

// relay sends the target's response (already in cc.resp) to the client.
func (cc *clientConn) relay(t *target, bc *backendConn, sent time.Time, final bool) (keep, retry bool) {
	req, resp, tg := &cc.req, &cc.resp, t.tg
	// Informational answers (other than a switch of protocol) go to
	// HTTP/1.1 clients and are followed by the real one.
	for resp.status >= 100 && resp.status < 200 && resp.status != 101 {
		if !req.http10 {
			cc.bw.Write(resp.buf)
		}
		if err := resp.readHead(bc.br, 64<<10, false); err != nil {
			bc.close()
			return cc.elbError(502, "invalid response from target"), false
		}
	}
	tg.metrics.observe(resp.status, time.Since(sent))
	if resp.status == 101 {
		if !req.upgrade {
			bc.close()
			return cc.elbError(502, "target switched protocols unasked"), false
		}
		cc.writeResponseHead(resp, false, false)
		if err := cc.bw.Flush(); err != nil {
			bc.close()
			return false, false
		}
		t.pool.forget(bc)
		tunnel(cc.tc.Conn, bc.c.(*timedConn).Conn, cc.br, bc.br, cc.l.cfg.IdleTimeout.D(), 0, nil)
		bc.c.Close()
		return false, false
	}

	noBody := resp.status == 204 || resp.status == 304 || string(req.bytes(req.first[0])) == "HEAD"
	untilClose := !noBody && !resp.chunked && resp.contentLength < 0
	dechunk := resp.chunked && req.http10 && !noBody
	closeClient := req.close || req.http10 || untilClose || dechunk || final || cc.l.closing.Load()
	cc.writeResponseHead(resp, closeClient, dechunk)
	flush := cc.bw
	var err error
	switch {
	case noBody:
	case resp.chunked:
		_, err = copyChunked(cc.bw, bc.br, 0, dechunk, flush)
	case resp.contentLength >= 0:
		err = copyN(cc.bw, bc.br, resp.contentLength, flush)
	default:
		err = copyUntilEOF(cc.bw, bc.br, flush)
	}
	if err == nil && (cc.br.Buffered() == 0 || closeClient) {
		// Batched with the next response when the client pipelines.
		err = cc.bw.Flush()
	}
	if err != nil || resp.close || untilClose || resp.http10 {
		bc.close()
	} else {
		t.pool.put(bc, time.Now())
	}
	return err == nil && !closeClient, false
}

// writeHead writes the request head for the target: hop-by-hop headers
// dropped, X-Forwarded-* added, HTTP/1.1 with keep-alive.
func (cc *clientConn) writeHead(w *bufio.Writer) {
	req := &cc.req
	w.Write(req.bytes(req.first[0]))
	w.WriteByte(' ')
	w.Write(req.bytes(req.first[1]))
	w.WriteString(" HTTP/1.1\r\n")
	cc.xff = cc.xff[:0]
	var upgrade []byte
	for _, f := range req.hdrs {
		name := req.bytes(f.name)
		switch forwardClass(name) {
		case hdrHop:
			if req.upgrade && eqFold(name, "upgrade") {
				upgrade = req.bytes(f.value)
			}
			continue
		case hdrXFF:
			if len(cc.xff) > 0 {
				cc.xff = append(cc.xff, ", "...)
			}
			cc.xff = append(cc.xff, req.bytes(f.value)...)
			continue
		case hdrReplaced:
			continue
		}
		if len(req.connTokens) > 0 && req.listedInConnection(name) {
			continue
		}
		w.Write(name)
		w.WriteString(": ")
		w.Write(req.bytes(f.value))
		w.WriteString("\r\n")
	}
	if req.host.end == 0 {
		w.WriteString("Host: ")
		w.WriteString(cc.l.hostFallback)
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	if len(cc.xff) > 0 {
		w.Write(cc.xff)
		w.WriteString(", ")
	}
	w.Write(cc.ip)
	w.WriteString(cc.l.forwardedTail)
	if req.host.end != 0 {
		w.WriteString("X-Forwarded-Host: ")
		w.Write(req.bytes(req.host))
		w.WriteString("\r\n")
	}
	if req.chunked {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if upgrade != nil {
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.Write(upgrade)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// writeResponseHead writes the target's response head for the client.
func (cc *clientConn) writeResponseHead(resp *head, closeClient, dechunk bool) {
	w := cc.bw
	w.WriteString("HTTP/1.1 ")
	w.Write(resp.bytes(resp.first[1]))
	w.WriteByte(' ')
	w.Write(resp.bytes(resp.first[2]))
	w.WriteString("\r\n")
	var upgrade []byte
	for _, f := range resp.hdrs {
		name := resp.bytes(f.name)
		if forwardClass(name) == hdrHop {
			if resp.status == 101 && eqFold(name, "upgrade") {
				upgrade = resp.bytes(f.value)
			}
			continue
		}
		if len(resp.connTokens) > 0 && resp.listedInConnection(name) {
			continue
		}
		w.Write(name)
		w.WriteString(": ")
		w.Write(resp.bytes(f.value))
		w.WriteString("\r\n")
	}
	if resp.chunked && !dechunk && resp.status != 304 && resp.status != 204 {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case upgrade != nil:
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.Write(upgrade)
		w.WriteString("\r\n")
	case closeClient:
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}

// Header classes for forwarding.
const (
	hdrPlain = iota
	hdrHop
	hdrXFF
	hdrReplaced
)

func forwardClass(name []byte) int {
	if hopByHop(name) {
		return hdrHop
	}
	switch len(name) {
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return hdrXFF
		}
	case 16:
		if eqFold(name, "x-forwarded-host") || eqFold(name, "x-forwarded-port") {
			return hdrReplaced
		}
	case 17:
		if eqFold(name, "x-forwarded-proto") {
			return hdrReplaced
		}
	}
	return hdrPlain
}

// elbError answers the client with an error of the balancer itself and
// reports whether the connection may go on (never: the request body, if
// any, is unread).
func (cc *clientConn) elbError(code int, msg string) bool {
	m := &cc.l.tg.metrics
	if code >= 500 {
		m.elb5xx.Add(1)
	} else {
		m.elb4xx.Add(1)
	}
	w := cc.bw
	body := http.StatusText(code) + ": " + msg + "\n"
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(code))
	w.WriteByte(' ')
	w.WriteString(http.StatusText(code))
	w.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	if code == 503 {
		w.WriteString("\r\nRetry-After: ")
		w.WriteString(strconv.Itoa(max(1, int(cc.l.tg.cfg.HoldTimeout.D().Seconds()))))
	}
	w.WriteString("\r\nConnection: close\r\n\r\n")
	w.WriteString(body)
	w.Flush()
	return false
}

// isBroken reports a connection that ended before a response began: the
// request may not have reached the application.
func isBroken(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
