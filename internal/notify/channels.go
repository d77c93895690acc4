package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Webhook headers.
//
// A receiver verifies a webhook by recomputing the signature over the
// timestamp header, a dot and the raw body with the channel's secret (see
// Verify), and should reject timestamps far from its own clock (five
// minutes, say) so that a captured request cannot be replayed later.
// Retries of one delivery carry the same X-Autoheal-Delivery, so a receiver
// can drop duplicates.
const (
	// HeaderEvent is the message's event: trigger, resolve, update or
	// acknowledge.
	HeaderEvent = "X-Autoheal-Event"
	// HeaderDelivery is the delivery id, the same for every retry.
	HeaderDelivery = "X-Autoheal-Delivery"
	// HeaderTimestamp is the attempt's time in unix seconds.
	HeaderTimestamp = "X-Autoheal-Timestamp"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of
	// timestamp + "." + body, keyed with the channel's secret. It is
	// absent when the channel has no secret.
	HeaderSignature = "X-Autoheal-Signature"
)

const signaturePrefix = "sha256="

// Sign returns the X-Autoheal-Signature value of body sent at timestamp
// (the X-Autoheal-Timestamp value).
func Sign(secret, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

// Verify reports whether signature is the X-Autoheal-Signature of body sent
// at timestamp with secret. The comparison takes constant time. An empty
// secret verifies nothing.
func Verify(secret, timestamp string, body []byte, signature string) bool {
	if secret == "" {
		return false
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, timestamp, body))
}

func mac(secret, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// request is what one attempt POSTs.
type request struct {
	body   []byte
	header http.Header
}

// render formats m for channel c as delivery id, attempted at now. It is
// pure: the webhook's timestamp and signature are the only parts that
// change between attempts.
func render(c ChannelSpec, id int64, m Message, now time.Time) (request, error) {
	var v any
	switch c.Type {
	case TypeWebhook:
		v = m
	case TypeSlack:
		v = slackMessage(m)
	case TypePagerDuty:
		v = pagerDutyEvent(c.RoutingKey, m)
	default:
		return request{}, fmt.Errorf("unknown channel type %q", c.Type)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return request{}, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "autoheal-notify")
	if c.Type == TypeWebhook {
		ts := strconv.FormatInt(now.Unix(), 10)
		h.Set(HeaderEvent, m.Event)
		h.Set(HeaderDelivery, strconv.FormatInt(id, 10))
		h.Set(HeaderTimestamp, ts)
		if c.Secret != "" {
			h.Set(HeaderSignature, Sign(c.Secret, ts, body))
		}
	}
	return request{body: body, header: h}, nil
}

// Slack's limits on block text.
const (
	slackSectionMax = 3000
	slackFieldMax   = 2000
)

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackPayload struct {
	// Text is the fallback shown in notifications and by clients that
	// do not render blocks.
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackMessage formats m for a Slack incoming webhook: a headline, the
// group, instance and source as fields, and the incident key and time.
// Details are left out: they are the incident record, too long for a
// chat line, and one click away in autoheal.
func slackMessage(m Message) slackPayload {
	summary := m.Summary
	if summary == "" {
		summary = "incident " + m.Key
	}
	var title, emoji string
	switch m.Event {
	case EventResolve:
		title, emoji = "Resolved: "+summary, ":white_check_mark:"
	case EventAcknowledge:
		title, emoji = "Acknowledged: "+summary, ":eyes:"
	case EventUpdate:
		title, emoji = "Update ["+strings.ToUpper(m.Severity)+"]: "+summary, severityEmoji(m.Severity)
	default:
		title, emoji = "["+strings.ToUpper(m.Severity)+"] "+summary, severityEmoji(m.Severity)
	}
	// The fallback text is mrkdwn too: unescaped, a summary holding
	// <!channel> would page the whole channel.
	p := slackPayload{Text: truncate(slackEscape(title), slackSectionMax)}
	p.Blocks = append(p.Blocks, slackBlock{Type: "section",
		Text: &slackText{Type: "mrkdwn", Text: truncate(emoji+" *"+slackEscape(title)+"*", slackSectionMax)}})
	var fields []slackText
	for _, f := range []struct{ name, value string }{
		{"Severity", m.Severity}, {"Group", m.Group}, {"Instance", m.Instance}, {"Source", m.Source},
	} {
		if f.value != "" && (f.name != "Severity" || m.Event != EventResolve) {
			fields = append(fields, slackText{Type: "mrkdwn",
				Text: truncate("*"+f.name+"*\n"+slackEscape(f.value), slackFieldMax)})
		}
	}
	if len(fields) > 0 {
		p.Blocks = append(p.Blocks, slackBlock{Type: "section", Fields: fields})
	}
	ctx := m.Time.UTC().Format(time.RFC3339)
	if m.Key != "" {
		ctx = "Incident `" + slackEscape(m.Key) + "` · " + ctx
	}
	p.Blocks = append(p.Blocks, slackBlock{Type: "context",
		Elements: []slackText{{Type: "mrkdwn", Text: truncate(ctx, slackFieldMax)}}})
	return p
}

func severityEmoji(sev string) string {
	switch sev {
	case SeverityCritical:
		return ":rotating_light:"
	case SeverityError:
		return ":red_circle:"
	case SeverityWarning:
		return ":warning:"
	default:
		return ":information_source:"
	}
}

// slackEscape escapes the three characters Slack's mrkdwn gives a meaning
// to (links and mentions), so a summary cannot ping @channel.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// pagerDutySummaryMax is the Events API v2 limit on payload.summary.
const pagerDutySummaryMax = 1024

type pagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type pagerDutyBody struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key,omitempty"`
	Payload     *pagerDutyPayload `json:"payload,omitempty"`
}

// pagerDutyEvent formats m as an Events API v2 event. A resolve or an
// acknowledge carries only the routing key, the action and the dedup key;
// an update is a trigger with the same dedup key, which PagerDuty folds
// into the open alert.
func pagerDutyEvent(routingKey string, m Message) pagerDutyBody {
	b := pagerDutyBody{RoutingKey: routingKey, EventAction: m.Event, DedupKey: m.Key}
	switch m.Event {
	case EventResolve, EventAcknowledge:
		return b
	case EventUpdate:
		b.EventAction = EventTrigger
	}
	b.Payload = &pagerDutyPayload{
		Summary:       truncate(m.Summary, pagerDutySummaryMax),
		Source:        m.Source,
		Severity:      m.Severity,
		Component:     m.Instance,
		Group:         m.Group,
		CustomDetails: m.Details,
	}
	if !m.Time.IsZero() {
		b.Payload.Timestamp = m.Time.UTC().Format(time.RFC3339Nano)
	}
	if len(b.Payload.CustomDetails) == 0 {
		b.Payload.CustomDetails = nil
	}
	return b
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// outcome is what an attempt's response means for the delivery.
type outcome int

const (
	delivered outcome = iota
	retryable
	permanent
)

// permanentError is a failure that no retry can fix, found before any
// response: the message cannot be formatted, the URL cannot be used.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// classify decides an attempt's outcome from its HTTP status, 0 when it got
// no response (err says why). No response, 408, 429 and 5xx are worth
// another try; any other 4xx (PagerDuty's 400 for an invalid event, Slack's
// 404 for a deleted hook) will not change by retrying, nor will a redirect,
// which is not followed.
func classify(status int, err error) outcome {
	var pe *permanentError
	switch {
	case errors.As(err, &pe):
		return permanent
	case status == 0:
		return retryable
	case status >= 200 && status < 300:
		return delivered
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return retryable
	default:
		return permanent
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date) relative
// to now; zero when absent or unparsable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		// Callers cap the pause anyway; this only keeps the product
		// from overflowing.
		s = min(s, 86400)
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
