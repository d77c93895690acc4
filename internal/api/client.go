package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// Client talks to a controller's API. The CLI uses nothing else.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for addr ("127.0.0.1:7070" or a URL) that
// sends no token: enough for a controller with no auth tokens configured.
func NewClient(addr string) *Client { return NewClientWithToken(addr, "") }

// NewClientWithToken returns a client for addr that sends token as
// "Authorization: Bearer TOKEN" on every request, streams included. An
// empty token sends none.
func NewClientWithToken(addr, token string) *Client {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	hc := &http.Client{}
	if token != "" {
		host := ""
		if u, err := url.Parse(base); err == nil {
			host = u.Host
		}
		hc.Transport = &bearer{next: http.DefaultTransport, token: token, host: host}
	}
	return &Client{base: base, http: hc}
}

// bearer adds the token to every request the client sends to its
// controller, whichever method built the request.
type bearer struct {
	next  http.RoundTripper
	token string
	// host is the controller's: the token is never sent anywhere else,
	// should a response ever redirect.
	host string
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != b.host || req.Header.Get("Authorization") != "" {
		return b.next.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
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

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach autoheal at %s (is `autoheal serve` running? set --addr): %w", c.base, err)
	}
	defer resp.Body.Close()
	return decodeResponse(resp, out)
}

func decodeResponse(resp *http.Response, out any) error {
	if resp.StatusCode >= 300 {
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
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
func (c *Client) Version(ctx context.Context) (Version, error) {
	var v Version
	return v, c.do(ctx, "GET", "/v1/version", nil, &v)
}

// Status returns every group and instance; all includes terminated ones.
func (c *Client) Status(ctx context.Context, all bool) (Status, error) {
	var s Status
	return s, c.do(ctx, "GET", "/v1/status?all="+strconv.FormatBool(all), nil, &s)
}

// Group returns one group.
func (c *Client) Group(ctx context.Context, name string) (group.Snapshot, error) {
	var s group.Snapshot
	return s, c.do(ctx, "GET", "/v1/groups/"+url.PathEscape(name), nil, &s)
}

// Scale changes a group's capacity.
func (c *Client) Scale(ctx context.Context, name string, req ScaleRequest) (group.Snapshot, error) {
	var s group.Snapshot
	return s, c.do(ctx, "POST", "/v1/groups/"+url.PathEscape(name)+"/scale", req, &s)
}

// Instance returns one instance.
func (c *Client) Instance(ctx context.Context, id string) (store.Instance, error) {
	var in store.Instance
	return in, c.do(ctx, "GET", "/v1/instances/"+url.PathEscape(id), nil, &in)
}

// Terminate terminates an instance.
func (c *Client) Terminate(ctx context.Context, id string, decrement bool) (store.Instance, error) {
	var in store.Instance
	return in, c.do(ctx, "POST", "/v1/instances/"+url.PathEscape(id)+"/terminate", TerminateRequest{Decrement: decrement}, &in)
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
func (c *Client) Events(ctx context.Context, q EventsQuery) ([]store.Event, error) {
	var evs []store.Event
	return evs, c.do(ctx, "GET", "/v1/events?"+q.values().Encode(), nil, &evs)
}

// FollowEvents streams events to fn until ctx ends or fn returns an error.
func (c *Client) FollowEvents(ctx context.Context, q EventsQuery, fn func(store.Event) error) error {
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
		var ev store.Event
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
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach autoheal at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeResponse(resp, nil)
	}
	return resp, nil
}
