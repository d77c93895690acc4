package config

import (
	"cmp"
	"errors"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Channels: where notifications and escalations go, and the references to
// them from alarms and Alertmanager routes.

// Channel types.
const (
	ChannelWebhook   = "webhook"
	ChannelSlack     = "slack"
	ChannelPagerDuty = "pagerduty"
)

// Channel is a destination for notifications and escalations (an SNS
// topic with one subscription).
type Channel struct {
	// Name identifies the channel in actions and escalations, like a group
	// name. Required, unique among channels.
	Name string `yaml:"name"`
	// Type is webhook (a JSON POST, signed with Secret), slack (a Slack
	// incoming webhook) or pagerduty (PagerDuty Events API v2: trigger and
	// resolve with a dedup key). Required.
	Type string `yaml:"type"`
	// URL receives the POST: an http or https URL. Required for webhook
	// and slack (or URLEnv); for pagerduty it defaults to
	// DefaultPagerDutyURL (set it for PagerDuty's EU service region).
	URL string `yaml:"url"`
	// URLEnv names an environment variable of autoheal's that holds the
	// URL instead, for URLs that are themselves secrets (a Slack webhook
	// URL is). It must be set when the config is validated. Not with URL.
	URLEnv string `yaml:"url_env"`
	// Secret is the HMAC-SHA256 key a webhook body is signed with
	// (webhook only). Default none: the body is sent unsigned.
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable that holds Secret instead,
	// set when the config is validated. Not with Secret.
	SecretEnv string `yaml:"secret_env"`
	// RoutingKey is the PagerDuty integration (routing) key. Required for
	// pagerduty (or RoutingKeyEnv); pagerduty only.
	RoutingKey string `yaml:"routing_key"`
	// RoutingKeyEnv names an environment variable that holds RoutingKey
	// instead, set when the config is validated. Not with RoutingKey.
	RoutingKeyEnv string `yaml:"routing_key_env"`
	// Timeout bounds one delivery attempt. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts is how many times a message is tried, with backoff,
	// before its delivery is marked failed; 1 to 100. Default 10.
	MaxAttempts int `yaml:"max_attempts"`
}

// URLValue returns the URL, read from URLEnv when that is set.
func (c Channel) URLValue() string { return valueOrEnv(c.URL, c.URLEnv) }

// SecretValue returns the webhook signing key, read from SecretEnv when
// that is set; "" means unsigned.
func (c Channel) SecretValue() string { return valueOrEnv(c.Secret, c.SecretEnv) }

// RoutingKeyValue returns the PagerDuty routing key, read from
// RoutingKeyEnv when that is set.
func (c Channel) RoutingKeyValue() string { return valueOrEnv(c.RoutingKey, c.RoutingKeyEnv) }

// valueOrEnv reads a value given in the file or through the environment.
// The environment is read when asked, not kept in the Config, so that a
// Config printed or compared never holds the secret.
func valueOrEnv(value, env string) string {
	if env != "" {
		return os.Getenv(env)
	}
	return value
}

// Channel returns the channel with the given name.
func (c *Config) Channel(name string) (*Channel, bool) {
	for i := range c.Channels {
		if c.Channels[i].Name == name {
			return &c.Channels[i], true
		}
	}
	return nil, false
}

// Channel defaults.
const (
	DefaultPagerDutyURL       = "https://events.pagerduty.com/v2/enqueue"
	DefaultChannelTimeout     = Duration(5 * time.Second)
	DefaultChannelMaxAttempts = 10
)

const maxChannelAttempts = 100

// setDefaults fills the channel's defaults.
func (ch *Channel) setDefaults() {
	ch.Timeout = cmp.Or(ch.Timeout, DefaultChannelTimeout)
	ch.MaxAttempts = cmp.Or(ch.MaxAttempts, DefaultChannelMaxAttempts)
	// Only PagerDuty has a well-known endpoint; the URL of any other
	// type is the user's to give, and validate asks for it.
	if ch.Type == ChannelPagerDuty && ch.URL == "" && ch.URLEnv == "" {
		ch.URL = DefaultPagerDutyURL
	}
}

func (v *validator) channels() {
	names := map[string]path{}
	for ci := range v.c.Channels {
		ch := &v.c.Channels[ci]
		p := path{}.field("channels").index(ci)
		v.uniqueName("channel", ch.Name, p.field("name"), names)

		tp := p.field("type")
		known := true
		switch ch.Type {
		case ChannelWebhook, ChannelSlack, ChannelPagerDuty:
		case "":
			known = false
			v.errorf(tp, "channel type is required: webhook, slack or pagerduty")
		default:
			known = false
			v.errorf(tp, "channel type %q: must be webhook, slack or pagerduty", ch.Type)
		}

		if v.secretPair(p, "url", ch.URL, ch.URLEnv) {
			if ch.URL != "" {
				if err := checkChannelURL(ch.URL); err != nil {
					v.errorf(p.field("url"), "url %q: %v", ch.URL, err)
				}
			} else if u := ch.URLValue(); u != "" {
				if err := checkChannelURL(u); err != nil {
					// Not quoted: the URL may be a secret.
					v.errorf(p.field("url_env"), "url_env %s: the URL it holds: %v", ch.URLEnv, err)
				}
			} else if known && ch.Type != ChannelPagerDuty {
				v.errorf(p, "a %s channel needs url (or url_env): where to POST", ch.Type)
			}
		}

		// A field the type does not use is reported as such, before
		// anything about its value.
		if known && ch.Type != ChannelWebhook {
			v.notUsedBy(p, ch.Type, "webhook channels (to sign the body)", map[string]string{"secret": ch.Secret, "secret_env": ch.SecretEnv})
		} else {
			v.secretPair(p, "secret", ch.Secret, ch.SecretEnv)
		}
		if known && ch.Type != ChannelPagerDuty {
			v.notUsedBy(p, ch.Type, "pagerduty channels", map[string]string{"routing_key": ch.RoutingKey, "routing_key_env": ch.RoutingKeyEnv})
		} else if v.secretPair(p, "routing_key", ch.RoutingKey, ch.RoutingKeyEnv) && known && ch.RoutingKey == "" && ch.RoutingKeyEnv == "" {
			v.errorf(p, "a pagerduty channel needs routing_key (or routing_key_env): the integration key of a PagerDuty service")
		}

		v.nonNegative(p.field("timeout"), ch.Timeout)
		if ch.MaxAttempts < 1 || ch.MaxAttempts > maxChannelAttempts {
			v.errorf(p.field("max_attempts"), "max_attempts %d: must be from 1 to %d", ch.MaxAttempts, maxChannelAttempts)
		}
	}
}

// notUsedBy reports each of fields that is set although a channel of type
// typ does not use it.
func (v *validator) notUsedBy(p path, typ, users string, fields map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if fields[name] != "" {
			v.keyErrorf(p.field(name), "%s is used only by %s, not %s", name, users, typ)
		}
	}
}

// secretPair checks a value that may be written in the file (name) or
// read from the environment (name_env): not both, and the variable set.
// It reports whether the pair is usable as far as that goes.
func (v *validator) secretPair(p path, name, value, env string) bool {
	envName := name + "_env"
	ep := p.field(envName)
	switch {
	case value != "" && env != "":
		v.keyErrorf(ep, "%s and %s are both set: give one", name, envName)
		return false
	case env == "":
		return true
	case !envVar.MatchString(env):
		v.errorf(ep, "%s %q is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", envName, env)
		return false
	case os.Getenv(env) == "":
		// Checked now rather than when the first incident needs the
		// channel, which is the worst time to find out.
		v.errorf(ep, "%s: environment variable %s is not set (or is empty)", envName, env)
		return false
	}
	return true
}

// checkChannelURL checks a channel's URL; the error does not repeat it.
func checkChannelURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case u.Host == "":
		return errors.New("needs a host")
	}
	return nil
}

// channelRefs checks a list of channel names: each defined, and listed
// once.
func (v *validator) channelRefs(names []string, p path) {
	seen := map[string]bool{}
	for i, name := range names {
		v.channelRef(name, p.index(i))
		if seen[name] && name != "" {
			v.errorf(p.index(i), "channel %q is listed twice", name)
		}
		seen[name] = true
	}
}

func (v *validator) channelRef(name string, p path) {
	if name == "" {
		v.errorf(p, "channel name must not be empty")
		return
	}
	if _, ok := v.c.Channel(name); ok {
		return
	}
	defined := make([]string, 0, len(v.c.Channels))
	for _, ch := range v.c.Channels {
		if ch.Name != "" {
			defined = append(defined, ch.Name)
		}
	}
	if len(defined) == 0 {
		v.errorf(p, "channel %q is not defined: this file has no channels", name)
		return
	}
	v.errorf(p, "channel %q is not defined in channels (%s)", name, strings.Join(defined, ", "))
}
