package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
)

// Client talks to a controller's API and answers in wire types. The CLI
// uses nothing else.
//
// A client made without a token finds the local admin token by itself
// when it talks to a controller on this host: the controller's 401 names
// the file (wire.Error.TokenFile), and the client reads it, if this
// process may (the operator on the host may; an unprivileged instance may
// not), and tries again once. Only a file named api-token that holds
// nothing but a token made by autoheal is ever sent, and only to a port
// that the file's owner listens on (LocalToken).
type Client struct {
	base string
	http *http.Client
	// loopback: the controller is on this host, so its token file is
	// one this client may look for.
	loopback bool

	mu    sync.Mutex
	token string
}

// NewClient returns a client for addr ("127.0.0.1:7070" or a URL) that
// finds the local admin token when it needs one (see Client).
func NewClient(addr string) *Client { return NewClientWithToken(addr, "") }

// NewClientWithToken returns a client for addr that sends token as
// "Authorization: Bearer TOKEN" on every request, streams included. An
// empty token sends none until one is found (see Client).
func NewClientWithToken(addr, token string) *Client {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	c := &Client{base: base, token: token}
	host := ""
	if u, err := url.Parse(base); err == nil {
		host = u.Host
		name := u.Hostname()
		ip := net.ParseIP(name)
		c.loopback = name == "localhost" || (ip != nil && ip.IsLoopback())
	}
	c.http = &http.Client{Transport: &bearer{next: http.DefaultTransport, client: c, host: host}}
	return c
}

// Token returns the token the client sends ("" for none yet).
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// bearer adds the client's token to every request it sends to its
// controller, whichever method built the request.
type bearer struct {
	next   http.RoundTripper
	client *Client
	// host is the controller's: the token is never sent anywhere else,
	// should a response ever redirect.
	host string
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := b.client.Token()
	if tok == "" || req.URL.Host != b.host || req.Header.Get("Authorization") != "" {
		return b.next.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	return b.next.RoundTrip(req)
}

// APIError is an error answered by the controller.
type APIError struct {
	Status int
	Code   string
	Msg    string
}

func (e *APIError) Error() string { return e.Msg }

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// send makes one request; a 401 from a controller on this host is tried
// again once with the local admin token, when this client has none and
// may read it. The caller closes the body.
func (c *Client) send(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	for retried := false; ; retried = true {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot reach autoheal at %s (is `autoheal serve` running? set --addr): %w", c.base, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || retried || !c.loopback || c.Token() != "" {
			return resp, nil
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var e wire.Error
		if json.Unmarshal(b, &e) != nil || e.TokenFile == "" {
			return resp, nil
		}
		tok, err := localToken(c.base, e.TokenFile)
		if err != nil {
			e.Error += fmt.Sprintf(" (this process cannot use it: %v; run as its owner, or pass --token)", err)
			b, _ = json.Marshal(e)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			return resp, nil
		}
		c.mu.Lock()
		c.token = tok
		c.mu.Unlock()
	}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var b []byte
	header := http.Header{}
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
		header.Set("Content-Type", "application/json")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, b, header)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeResponse(resp, out)
}

func decodeResponse(resp *http.Response, out any) error {
	if resp.StatusCode >= 300 {
		var e wire.Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Code: e.Code, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (wire.Version, error) {
	var v wire.Version
	return v, c.do(ctx, "GET", "/v1/version", nil, &v)
}

// Status returns every group and instance; all includes terminated ones.
func (c *Client) Status(ctx context.Context, all bool) (wire.Status, error) {
	var s wire.Status
	return s, c.do(ctx, "GET", "/v1/status?all="+strconv.FormatBool(all), nil, &s)
}

// Group returns one group.
func (c *Client) Group(ctx context.Context, name string) (wire.Group, error) {
	var s wire.Group
	return s, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(name), nil, &s)
}

// Scale changes a group's capacity.
func (c *Client) Scale(ctx context.Context, name string, req wire.ScaleRequest) (wire.Group, error) {
	var s wire.Group
	return s, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(name)+"/scale", req, &s)
}

// Instance returns one instance.
func (c *Client) Instance(ctx context.Context, id string) (wire.Instance, error) {
	var in wire.Instance
	return in, c.do(ctx, "GET", "/v1/instances/"+url.PathEscape(id), nil, &in)
}

// Metadata returns an instance's metadata document.
func (c *Client) Metadata(ctx context.Context, id string) (wire.Metadata, error) {
	var md wire.Metadata
	return md, c.do(ctx, "GET", "/v1/instances/"+url.PathEscape(id)+"/metadata", nil, &md)
}

// Terminate terminates an instance.
func (c *Client) Terminate(ctx context.Context, id string, decrement bool) (wire.Instance, error) {
	var in wire.Instance
	return in, c.do(ctx, "POST", "/v1/instances/"+url.PathEscape(id)+"/terminate", wire.TerminateRequest{Decrement: decrement}, &in)
}

// RestartInstance restarts an instance in place.
func (c *Client) RestartInstance(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/instances/"+url.PathEscape(id)+"/restart", nil, nil)
}

// EventsQuery selects events.
type EventsQuery struct {
	Group, Instance string
	After           int64
	Limit           int
}

func (q EventsQuery) values() url.Values {
	v := url.Values{}
	if q.Group != "" {
		v.Set("group", q.Group)
	}
	if q.Instance != "" {
		v.Set("instance", q.Instance)
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Events returns journal events.
func (c *Client) Events(ctx context.Context, q EventsQuery) ([]wire.Event, error) {
	var evs []wire.Event
	return evs, c.do(ctx, "GET", "/v1/events?"+q.values().Encode(), nil, &evs)
}

// FollowEvents streams events to fn until ctx ends or fn returns an error.
func (c *Client) FollowEvents(ctx context.Context, q EventsQuery, fn func(wire.Event) error) error {
	v := q.values()
	v.Set("follow", "true")
	resp, err := c.stream(ctx, "/v1/events?"+v.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var ev wire.Event
		if err := json.Unmarshal([]byte(line[len("data: "):]), &ev); err != nil || ev.Seq == 0 {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("event stream ended (controller stopped?)")
}

// LogsQuery selects log output.
type LogsQuery struct {
	Instance, Group string
	Stream          string // stdout, stderr or both
	Tail            int
	Follow          bool
}

// Logs copies an instance's or group's logs to w.
func (c *Client) Logs(ctx context.Context, q LogsQuery, w io.Writer) error {
	v := url.Values{}
	if q.Instance != "" {
		v.Set("instance", q.Instance)
	}
	if q.Group != "" {
		v.Set("group", q.Group)
	}
	if q.Stream != "" {
		v.Set("stream", q.Stream)
	}
	v.Set("tail", strconv.Itoa(q.Tail))
	v.Set("follow", strconv.FormatBool(q.Follow))
	resp, err := c.stream(ctx, "/v1/logs?"+v.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// stream GETs a long-lived response (no client timeout: it lasts until ctx
// ends). The caller closes the body.
func (c *Client) stream(ctx context.Context, path string) (*http.Response, error) {
	resp, err := c.send(ctx, "GET", path, nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeResponse(resp, nil)
	}
	return resp, nil
}
