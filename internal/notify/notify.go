package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autoheal/autoheal/internal/store"
)

// Channel types.
const (
	TypeWebhook   = "webhook"
	TypeSlack     = "slack"
	TypePagerDuty = "pagerduty"
)

// Message events. They follow PagerDuty's event actions; an update is sent
// to PagerDuty as a trigger with the same dedup key, which it folds into the
// open incident.
const (
	EventTrigger     = "trigger"
	EventResolve     = "resolve"
	EventUpdate      = "update"
	EventAcknowledge = "acknowledge"
)

// Severities, PagerDuty's.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Delivery statuses.
const (
	StatusPending   = store.NotificationPending
	StatusDelivered = store.NotificationDelivered
	StatusFailed    = store.NotificationFailed
)

// Defaults.
const (
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts: with the default backoff (1s doubling, capped at
	// 5m, halved by jitter at worst) ten attempts span about five to ten
	// minutes.
	DefaultMaxAttempts = 10
	// DefaultBaseBackoff is the pause before the first retry.
	DefaultBaseBackoff = time.Second
	// DefaultMaxBackoff caps the pause between attempts.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultPagerDutyURL is the Events API v2 endpoint, used when a
	// pagerduty channel has no URL.
	DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"
	// DefaultSource is a message's source when it names none.
	DefaultSource = "autoheal"

	// maxBody bounds a stored message. Details above it are replaced by a
	// note: an escalation must go out even when the incident record is
	// huge, and receivers cap their bodies too (PagerDuty at 512 KB).
	maxBody = 256 << 10
)

// Errors.
var (
	// ErrUnknownChannel: Send named a channel that is not configured.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrClosed: the Notifier is closed.
	ErrClosed = errors.New("notifier closed")
	// ErrInvalidMessage: the message cannot be sent as it is.
	ErrInvalidMessage = errors.New("invalid message")
)

// ChannelSpec is one configured channel. The server maps config.Channel to
// it.
type ChannelSpec struct {
	// Name identifies the channel in Send and in the outbox.
	Name string
	// Type is TypeWebhook, TypeSlack or TypePagerDuty.
	Type string
	// URL receives the POST. Required for webhook and slack; default
	// DefaultPagerDutyURL for pagerduty. It may hold a secret (a Slack
	// webhook URL does), so it is never logged nor recorded.
	URL string
	// Secret signs webhook bodies (X-Autoheal-Signature). Empty: the
	// webhook is sent unsigned.
	Secret string
	// RoutingKey is the PagerDuty integration key. Required for pagerduty.
	RoutingKey string
	// Timeout bounds one attempt. Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts before a delivery is marked failed. Default
	// DefaultMaxAttempts.
	MaxAttempts int
}

// Message is what is escalated. Its JSON form is the body of a webhook.
type Message struct {
	// Key is the dedup key: the incident id. Messages of one channel and
	// key are delivered in the order they were sent. Required for resolve
	// and acknowledge.
	Key string `json:"key"`
	// Event is EventTrigger (default), EventResolve, EventUpdate or
	// EventAcknowledge.
	Event string `json:"event"`
	// Severity is SeverityCritical, SeverityError (default),
	// SeverityWarning or SeverityInfo.
	Severity string `json:"severity"`
	// Summary is one line for humans. Required for trigger and update.
	Summary string `json:"summary"`
	// Source is what raised it. Default DefaultSource.
	Source   string `json:"source"`
	Group    string `json:"group"`
	Instance string `json:"instance"`
	// Details is the incident record and timeline; it must marshal to
	// JSON.
	Details map[string]any `json:"details"`
	// Time the event happened. Default: when Send is called.
	Time time.Time `json:"time"`
}

// Delivery is the state of one message for one channel.
type Delivery struct {
	// ID is sent as X-Autoheal-Delivery; it increases and is never reused.
	ID      int64  `json:"id"`
	Channel string `json:"channel"`
	Key     string `json:"key"`
	Event   string `json:"event"`
	// Status is StatusPending, StatusDelivered or StatusFailed.
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	// LastError of the last attempt; for a failed delivery, why it failed.
	LastError string `json:"last_error,omitempty"`
	// LastHTTPStatus of the last attempt, 0 if it got no response.
	LastHTTPStatus int       `json:"last_http_status,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// NextAttempt is when a pending delivery is tried next.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	Message     Message    `json:"message"`
}

// Filter selects deliveries. Zero fields match everything.
type Filter struct {
	Channel string
	Key     string
	Group   string
	Status  string
	// Limit is the maximum number returned, newest first (0: 100).
	Limit int
}

// Options are the Notifier's dependencies and tuning.
type Options struct {
	// Client sends the requests. Default: a client that does not follow
	// redirects (a redirected POST would silently lose its body). Channel
	// timeouts apply either way.
	Client *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// BaseBackoff is the pause before the first retry; it doubles with
	// every attempt. Default DefaultBaseBackoff.
	BaseBackoff time.Duration
	// MaxBackoff caps the pause. Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Journal appends notify.delivered and notify.failed events to the durable
	// journal. Default: none.
	Journal func(ctx context.Context, ev store.Event) error
}

// Notifier sends messages through its channels. Its worker starts with New
// and stops with Close.
type Notifier struct {
	st       *store.Store
	opts     Options
	log      *slog.Logger
	channels map[string]ChannelSpec // read-only after New
	// maxLoaded bounds the pending deliveries the worker holds in memory
	// (a field so tests can page through a small outbox).
	maxLoaded int

	// wake tells the worker that Send enqueued something.
	wake chan struct{}

	// ctx ends with Close; the worker and every attempt watch it.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the worker
	inflight sync.WaitGroup // attempts
	closed   atomic.Bool
	once     sync.Once
}

// New checks the channels and starts the worker, which first picks up the
// deliveries a previous Notifier left pending in st.
func New(st *store.Store, channels []ChannelSpec, opts Options) (*Notifier, error) {
	n, err := build(st, channels, opts)
	if err != nil {
		return nil, err
	}
	n.start()
	return n, nil
}

// build is New without starting the worker.
func build(st *store.Store, channels []ChannelSpec, opts Options) (*Notifier, error) {
	if st == nil {
		return nil, errors.New("notify: no store")
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = DefaultBaseBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxBackoff < opts.BaseBackoff {
		opts.MaxBackoff = opts.BaseBackoff
	}
	if opts.Journal == nil {
		opts.Journal = func(context.Context, store.Event) error { return nil }
	}
	n := &Notifier{
		st:        st,
		opts:      opts,
		log:       opts.Logger,
		channels:  map[string]ChannelSpec{},
		maxLoaded: maxLoaded,
		wake:      make(chan struct{}, 1),
	}
	for _, c := range channels {
		c, err := checkChannel(c)
		if err != nil {
			return nil, err
		}
		if _, dup := n.channels[c.Name]; dup {
			return nil, fmt.Errorf("notify: channel %s: duplicate name", c.Name)
		}
		n.channels[c.Name] = c
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

func (n *Notifier) start() {
	n.wg.Add(1)
	go n.run()
}

// checkChannel fills in c's defaults and rejects what cannot work.
func checkChannel(c ChannelSpec) (ChannelSpec, error) {
	if c.Name == "" {
		return c, errors.New("notify: channel without a name")
	}
	switch c.Type {
	case TypeWebhook, TypeSlack:
	case TypePagerDuty:
		if c.URL == "" {
			c.URL = DefaultPagerDutyURL
		}
		if c.RoutingKey == "" {
			return c, fmt.Errorf("notify: channel %s: pagerduty needs a routing key", c.Name)
		}
	default:
		return c, fmt.Errorf("notify: channel %s: unknown type %q (want webhook, slack or pagerduty)", c.Name, c.Type)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL itself is not quoted: it may be a secret.
		return c, fmt.Errorf("notify: channel %s: url must be an absolute http or https URL", c.Name)
	}
	if c.Timeout < 0 || c.MaxAttempts < 0 {
		return c, fmt.Errorf("notify: channel %s: negative timeout or max attempts", c.Name)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	return c, nil
}

// Channels returns the names of the configured channels, sorted.
func (n *Notifier) Channels() []string {
	return slices.Sorted(maps.Keys(n.channels))
}

// Send enqueues m for channel and returns once it is on disk. It never
// waits for the network.
func (n *Notifier) Send(ctx context.Context, channel string, m Message) error {
	return n.SendAll(ctx, []string{channel}, m)
}

// SendAll enqueues m for each of channels in one write: all or none are
// on disk when it returns. It never waits for the network.
func (n *Notifier) SendAll(ctx context.Context, channels []string, m Message) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if len(channels) == 0 {
		return nil
	}
	m, body, err := n.prepare(m)
	if err != nil {
		return fmt.Errorf("%s: %w", sendOp(m.Key), err)
	}
	recs := make([]store.NotificationRecord, 0, len(channels))
	t := n.opts.Now().UTC()
	for _, name := range channels {
		if _, ok := n.channels[name]; !ok {
			return fmt.Errorf("%s: %w %q", sendOp(m.Key), ErrUnknownChannel, name)
		}
		recs = append(recs, store.NotificationRecord{
			Channel: name, Key: m.Key, Event: m.Event, Group: m.Group, Instance: m.Instance,
			CreatedAt: t, UpdatedAt: t, Body: body,
		})
	}
	if _, err := n.st.EnqueueNotifications(ctx, recs); err != nil {
		return fmt.Errorf("%s: %w", sendOp(m.Key), err)
	}
	select {
	case n.wake <- struct{}{}:
	default: // the worker has a wake-up pending already
	}
	return nil
}

func sendOp(key string) string {
	if key == "" {
		return "notify"
	}
	return "notify " + key
}

// prepare fills in m's defaults, checks it and returns its stored form.
func (n *Notifier) prepare(m Message) (Message, []byte, error) {
	if m.Event == "" {
		m.Event = EventTrigger
	}
	if m.Severity == "" {
		m.Severity = SeverityError
	}
	if m.Source == "" {
		m.Source = DefaultSource
	}
	if m.Time.IsZero() {
		m.Time = n.opts.Now()
	}
	m.Time = m.Time.UTC()
	if m.Details == nil {
		m.Details = map[string]any{}
	}
	switch m.Event {
	case EventTrigger, EventUpdate:
		if m.Summary == "" {
			return m, nil, fmt.Errorf("%w: %s without a summary", ErrInvalidMessage, m.Event)
		}
	case EventResolve, EventAcknowledge:
		if m.Key == "" {
			return m, nil, fmt.Errorf("%w: %s without a key", ErrInvalidMessage, m.Event)
		}
	default:
		return m, nil, fmt.Errorf("%w: unknown event %q", ErrInvalidMessage, m.Event)
	}
	switch m.Severity {
	case SeverityCritical, SeverityError, SeverityWarning, SeverityInfo:
	default:
		return m, nil, fmt.Errorf("%w: unknown severity %q", ErrInvalidMessage, m.Severity)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return m, nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if len(body) > maxBody {
		m.Details = map[string]any{
			"truncated": fmt.Sprintf("details were %d bytes, over the %d byte limit; see the incident record", len(body), maxBody),
		}
		if body, err = json.Marshal(m); err != nil {
			return m, nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
		if len(body) > maxBody {
			return m, nil, fmt.Errorf("%w: %d bytes without details, limit %d", ErrInvalidMessage, len(body), maxBody)
		}
	}
	return m, body, nil
}

// Deliveries returns the deliveries matching f, newest first.
func (n *Notifier) Deliveries(ctx context.Context, f Filter) ([]Delivery, error) {
	recs, err := n.st.Notifications(ctx, store.NotificationFilter{
		Channel: f.Channel, Key: f.Key, Group: f.Group, Status: f.Status, Limit: f.Limit,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: deliveries: %w", err)
	}
	out := make([]Delivery, 0, len(recs))
	for _, r := range recs {
		out = append(out, deliveryOf(r))
	}
	return out, nil
}

func deliveryOf(r store.NotificationRecord) Delivery {
	d := Delivery{
		ID: r.ID, Channel: r.Channel, Key: r.Key, Event: r.Event, Status: r.Status,
		Attempts: r.Attempts, LastError: r.LastError, LastHTTPStatus: r.LastStatus,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Status == StatusPending {
		next := r.NextAt
		if next.IsZero() {
			next = r.CreatedAt
		}
		d.NextAttempt = &next
	}
	// A body that does not parse leaves Message zero: the columns above
	// still tell what happened.
	_ = json.Unmarshal(r.Body, &d.Message)
	return d
}

// Close stops the worker and waits for it. Attempts in flight are
// cancelled and do not count; their deliveries stay pending for the next
// Notifier on the same store. Close the Notifier before the store.
func (n *Notifier) Close() error {
	n.once.Do(func() {
		n.closed.Store(true)
		n.cancel()
		n.wg.Wait()
		n.inflight.Wait()
	})
	return nil
}
