package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// A cluster's API from any host (docs/design.md#13-the-cluster). The
// leader runs every group; a follower's API checks the browser rules and
// the caller's credential itself, as any API does, then forwards the
// request to the leader's peer endpoint with who the caller is (name and
// role), signed with the cluster's peer key, instead of the credential: a
// token never crosses the network, and a follower's own local admin token
// works on it as on the leader. The signature covers the host, the
// caller, the method, the URI, the body's SHA-256, the time and a nonce;
// the leader accepts a claim once, within forwardWindow of its time.

// Forwarding makes a Handler a follower's: every authorized request but the
// dashboard's files and its sign-in goes to the leader.
type Forwarding struct {
	// Host is this host's name, for the audit trail ("ops via h2").
	Host string
	// Key is the cluster's peer key.
	Key []byte
	// Leader returns the base URL of the leader's peer endpoint
	// ("http://10.0.0.1:7071"), or an error when none leads.
	Leader func(ctx context.Context) (string, error)
}

const (
	forwardedHeader    = "X-Autoheal-Forwarded"
	forwardedSigHeader = "X-Autoheal-Forwarded-Signature"
	// forwardWindow is how far a claim's time may be from the leader's
	// clock (hosts run NTP; a claim is checked once, at its arrival).
	forwardWindow = 30 * time.Second
	// maxForwardBody bounds a forwarded body: above every endpoint's own
	// limit, which the leader applies.
	maxForwardBody = 16 << 20
)

// forwardClaim is what a follower vouches for.
type forwardClaim struct {
	Host string `json:"host"`
	Name string `json:"name"`
	Role string `json:"role"`
	// Instance is set for an instance's credential, whose calls stay
	// bound to it on the leader.
	Instance string `json:"instance,omitempty"`
	Method   string `json:"method"`
	URI      string `json:"uri"`
	Body     string `json:"body_sha256"`
	Time     int64  `json:"time_ms"`
	Nonce    string `json:"nonce"`
}

func forwardMAC(key []byte, claim string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(claim))
	return m.Sum(nil)
}

// forward sends an authorized request to the leader.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, p principal) {
	fw := h.deps.Forward
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForwardBody+1))
	if err != nil {
		writeError(w, fmt.Errorf("%w: reading the body: %v", errInvalid, err))
		return
	}
	if len(body) > maxForwardBody {
		writeError(w, fmt.Errorf("%w: over %d bytes", errTooLarge, maxForwardBody))
		return
	}
	base, err := fw.Leader(r.Context())
	if err != nil {
		writeError(w, fmt.Errorf("%w: this host follows, and the cluster's leader cannot be reached: %v", errUnavailable, err))
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		writeError(w, fmt.Errorf("leader address %q: %w", base, err))
		return
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	sum := sha256.Sum256(body)
	c, _ := json.Marshal(forwardClaim{Host: fw.Host, Name: p.name, Role: p.role, Instance: p.instance, Method: r.Method, URI: r.URL.RequestURI(),
		Body: hex.EncodeToString(sum[:]), Time: time.Now().UnixMilli(), Nonce: hex.EncodeToString(nonce)})
	claim := base64.RawURLEncoding.EncodeToString(c)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath = r.URL.Path, r.URL.RawPath
			pr.Out.Host = target.Host
			// The credential stays here; the browser's origin was checked
			// here and is not the leader's.
			for _, k := range []string{"Authorization", "Cookie", "Origin", "Sec-Fetch-Site", forwardedHeader, forwardedSigHeader} {
				pr.Out.Header.Del(k)
			}
			pr.Out.Header.Set(forwardedHeader, claim)
			pr.Out.Header.Set(forwardedSigHeader, hex.EncodeToString(forwardMAC(fw.Key, claim)))
			pr.Out.Body = io.NopCloser(bytes.NewReader(body))
			pr.Out.ContentLength = int64(len(body))
		},
		FlushInterval: -1, // event streams
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, fmt.Errorf("%w: the cluster's leader at %s: %v", errUnavailable, base, err))
		},
	}
	proxy.ServeHTTP(w, r)
}

// forwarded checks a follower's claim and returns its caller. The body is
// read here (bounded) to check its hash, and given back to the route.
func (h *Handler) forwarded(r *http.Request, claim string) (principal, error) {
	refused := func(why string) (principal, error) {
		return principal{}, fmt.Errorf("%w: forwarded request refused: %s", errUnauthorized, why)
	}
	if len(h.deps.PeerKey) == 0 {
		return refused("this API takes no forwarded requests")
	}
	sig, err := hex.DecodeString(r.Header.Get(forwardedSigHeader))
	if err != nil || !hmac.Equal(sig, forwardMAC(h.deps.PeerKey, claim)) {
		return refused("bad signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(claim)
	var c forwardClaim
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return refused("unreadable claim")
	}
	now := time.Now()
	at := time.UnixMilli(c.Time)
	if at.Before(now.Add(-forwardWindow)) || at.After(now.Add(forwardWindow)) {
		return refused(fmt.Sprintf("its time %s is more than %s from this host's", at.UTC().Format(time.RFC3339), forwardWindow))
	}
	if c.Method != r.Method || c.URI != r.URL.RequestURI() {
		return refused("it was signed for another request")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForwardBody+1))
	if err != nil || len(body) > maxForwardBody {
		return refused("unreadable body")
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != c.Body {
		return refused("the body is not the one signed")
	}
	if !h.nonces.Once(c.Nonce, now, at.Add(forwardWindow)) {
		return refused("replayed")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if roleRank[c.Role] == 0 {
		return refused(fmt.Sprintf("role %q", c.Role))
	}
	return principal{name: c.Name + " via " + c.Host, role: c.Role, instance: c.Instance}, nil
}
