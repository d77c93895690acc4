package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Result is the outcome of a probe that ran.
type Result int

const (
	// Success: the target answered as a healthy one does.
	Success Result = iota
	// Failure: the target did not answer, or answered badly.
	Failure
)

// String returns "success" or "failure".
func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Prober probes one target. The error is not a failed target: it means the
// probe could not run (a malformed URL, a command that could not start), and
// the result is then ignored. Probe must return when ctx is done.
type Prober interface {
	Probe(ctx context.Context) (Result, string, error)
}

// maxOutput caps what a probe keeps of a body or a command's output: enough
// to explain a failure in the journal, bounded whatever the target sends.
const maxOutput = 4 << 10

// userAgent lets an application's access log tell probes from clients.
const userAgent = "autoheal-health-check"

// HTTP returns a prober that GETs url: a 2xx or 3xx status is a success
// (redirects are not followed, as ELB and Kubernetes do not), anything else
// or no answer is a failure. At most 4KiB of the body is read.
//
// Each prober has its own transport with one kept-alive connection. On this
// kind of machine (a VM where connect and close are expensive syscalls) a
// fresh connection per probe made 100 idle groups with a check every second
// cost the controller 5.6% of a core, over the 5% budget; reusing the
// connection removes the dial and the close from every probe. A connection
// never outlives its process: checkers are per launch, and a probe that times
// out closes its connection. The cost is one idle connection per check on
// the application (BenchmarkHTTPProbe compares both settings).
func HTTP(url string) Prober { return newHTTPProber(url, true) }

// newHTTPProber exists so that the benchmark can compare keep-alive on.
func newHTTPProber(url string, keepAlive bool) *httpProber {
	tr := &http.Transport{
		// Never through HTTP_PROXY: the target is the instance itself.
		Proxy:             nil,
		DialContext:       probeDialer().DialContext,
		DisableKeepAlives: !keepAlive,
		// A probe reads 4KiB at most; compressed bodies would only cost CPU.
		DisableCompression: true,
		// Health checks do not verify certificates (ELB, Kubernetes): the
		// instance is reached by address, not by the name on its certificate.
		// The TLS handshake is bounded by the probe's context.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		// Longer than any sensible interval, so the connection is reused.
		IdleConnTimeout: 5 * time.Minute,
	}
	return &httpProber{
		url: url,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

type httpProber struct {
	url    string
	client *http.Client
}

func (p *httpProber) Probe(ctx context.Context) (Result, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return Failure, "", fmt.Errorf("http probe %s: %w", p.url, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := p.client.Do(req)
	if err != nil {
		return Failure, failureOutput(ctx, err), nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	resp.Body.Close()
	out := fmt.Sprintf("HTTP %s", resp.Status)
	if len(body) > 0 {
		out += ": " + strings.TrimSpace(string(body))
	}
	if err != nil {
		// The status line is what counts; a body cut short is noted.
		out += " (body: " + failureOutput(ctx, err) + ")"
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return Success, out, nil
	}
	return Failure, out, nil
}

// CloseIdleConnections releases the transport's resources; the Checker calls
// it on Close.
func (p *httpProber) CloseIdleConnections() { p.client.CloseIdleConnections() }

// TCP returns a prober that succeeds when a TCP connection to addr
// (host:port) is established.
func TCP(addr string) Prober { return &tcpProber{addr: addr, dialer: probeDialer()} }

type tcpProber struct {
	addr   string
	dialer *net.Dialer
}

func (p *tcpProber) Probe(ctx context.Context) (Result, string, error) {
	conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return Failure, failureOutput(ctx, err), nil
	}
	// Close with a reset rather than a FIN (HAProxy's checks do the same):
	// the prober closes first, and a graceful close would leave one
	// TIME_WAIT socket per probe, holding an ephemeral port for a minute.
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
	return Success, "connected to " + p.addr, nil
}

// probeDialer bounds nothing itself (the probe's context does) and turns TCP
// keep-alive probes off: a probe connection lives for milliseconds.
func probeDialer() *net.Dialer { return &net.Dialer{KeepAlive: -1} }

// failureOutput describes why a probe failed, naming a timeout plainly.
func failureOutput(ctx context.Context, err error) string {
	// A dial can hit the context's deadline (as a socket deadline) just
	// before the context itself reports it: ask the error too.
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		return "timed out: " + err.Error()
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "connection refused"
	}
	return err.Error()
}

// Exec returns a prober that runs a command through run (the caller decides
// how: the group runs it through the provider, in the instance's
// environment). Exit code 0 is a success; any other is a failure. An error
// from run means the command could not run.
func Exec(run func(ctx context.Context) (exitCode int, output string, err error)) Prober {
	return execProber(run)
}

type execProber func(ctx context.Context) (int, string, error)

func (run execProber) Probe(ctx context.Context) (Result, string, error) {
	code, out, err := run(ctx)
	out = truncate(strings.TrimSpace(out))
	if err != nil {
		return Failure, out, fmt.Errorf("exec probe: %w", err)
	}
	if code != 0 {
		if out == "" {
			return Failure, fmt.Sprintf("exit code %d", code), nil
		}
		return Failure, fmt.Sprintf("exit code %d: %s", code, out), nil
	}
	return Success, out, nil
}

// Process returns a prober that succeeds while alive reports the process
// running. alive must not block.
func Process(alive func() bool) Prober { return processProber(alive) }

type processProber func() bool

func (alive processProber) Probe(context.Context) (Result, string, error) {
	if alive() {
		return Success, "process running", nil
	}
	return Failure, "process not running", nil
}

// truncate caps s at maxOutput bytes without splitting a UTF-8 sequence.
func truncate(s string) string {
	if len(s) <= maxOutput {
		return s
	}
	return strings.ToValidUTF8(s[:maxOutput], "") + "…"
}

var (
	_ Prober = (*httpProber)(nil)
	_ Prober = (*tcpProber)(nil)
	_ Prober = execProber(nil)
	_ Prober = processProber(nil)
)
