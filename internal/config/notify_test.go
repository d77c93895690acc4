package config

import "testing"

// TestChannelEnv: values given through the environment are read when asked
// for, never copied into the Config.
func TestChannelEnv(t *testing.T) {
	t.Setenv("HOOK_SECRET", "s3cret")
	t.Setenv("SLACK_URL", "https://hooks.slack.com/services/T/B/x")
	t.Setenv("PD_KEY", "k")
	cfg, err := Parse("mem.yaml", []byte(alarmBase+`
channels:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/", secret_env: HOOK_SECRET}
  - {name: slack, type: slack, url_env: SLACK_URL}
  - {name: pd, type: pagerduty, routing_key_env: PD_KEY}
  - {name: plain, type: webhook, url: "http://127.0.0.1:9/", secret: inline}
`))
	if err != nil {
		t.Fatal(err)
	}
	hook, slack, pd, plain := cfg.Channels[0], cfg.Channels[1], cfg.Channels[2], cfg.Channels[3]
	if hook.Secret != "" || slack.URL != "" || pd.RoutingKey != "" {
		t.Errorf("a value from the environment was copied into the Config: %+v", cfg.Channels)
	}
	for _, c := range []struct{ name, got, want string }{
		{"hook secret", hook.SecretValue(), "s3cret"},
		{"slack url", slack.URLValue(), "https://hooks.slack.com/services/T/B/x"},
		{"pd key", pd.RoutingKeyValue(), "k"},
		{"pd url", pd.URLValue(), DefaultPagerDutyURL},
		{"inline secret", plain.SecretValue(), "inline"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// A URL from the environment is checked, and not repeated: it may be
	// a secret.
	t.Setenv("SLACK_URL", "hooks.slack.com/services/T/B/x")
	_, err = Parse("mem.yaml", []byte(alarmBase+"channels:\n  - {name: slack, type: slack, url_env: SLACK_URL}\n"))
	if want := "mem.yaml:5:41: url_env SLACK_URL: the URL it holds: must be an http or https URL"; errString(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
