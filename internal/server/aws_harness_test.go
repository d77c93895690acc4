package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The AWS-compatible endpoint under its real clients: Debian's AWS CLI
// (aws-cli 2.9, /usr/bin/aws) and boto3 (python3-boto3), which test.sh
// installs, against a running controller. Each profile of the keys file
// has one role.

const (
	awsCLI    = "/usr/bin/aws"
	awsPython = "/usr/bin/python3"
)

// awsKeys is the keys file the tests' controllers read: one profile per
// role.
const awsKeys = `[admin]
aws_access_key_id = AKIAAUTOHEALADMIN001
aws_secret_access_key = adminSecretKey/0123456789abcdefghijklmn
autoheal_role = admin

[operator]
aws_access_key_id = AKIAAUTOHEALOPER0001
aws_secret_access_key = operatorSecretKey/0123456789abcdefghijk
autoheal_role = operator

[viewer]
aws_access_key_id = AKIAAUTOHEALVIEW0001
aws_secret_access_key = viewerSecretKey/0123456789abcdefghijklm
autoheal_role = viewer
`

// awsEnv is a controller with the AWS endpoint and its clients.
type awsEnv struct {
	*env
	t        *testing.T
	keysFile string
	home     string
}

// needAWSClients skips a test when Debian's clients are not installed.
// With AUTOHEAL_REQUIRE_TOOLS set (test.sh installed them), their absence
// fails it.
func needAWSClients(t *testing.T) {
	t.Helper()
	var msg string
	if _, err := os.Stat(awsCLI); err != nil {
		msg = fmt.Sprintf("%s not installed (Debian package awscli; test.sh installs it): %v", awsCLI, err)
	} else if err := exec.Command(awsPython, "-c", "import boto3").Run(); err != nil {
		msg = fmt.Sprintf("boto3 not installed (Debian package python3-boto3; test.sh installs it): %v", err)
	}
	if msg == "" {
		return
	}
	if os.Getenv("AUTOHEAL_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s, and AUTOHEAL_REQUIRE_TOOLS is set", msg)
	}
	t.Skip(msg)
}

// writeAWSKeys writes the keys file (mode 0600) next to nothing else and
// returns its path.
func writeAWSKeys(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "aws-credentials")
	if err := os.WriteFile(p, []byte(awsKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAWS starts a controller in process with cfg, whose api section
// gets the keys file: cfg must not have an api: section of its own.
func startAWS(t *testing.T, cfg string) *awsEnv {
	t.Helper()
	needAWSClients(t)
	keys := writeAWSKeys(t)
	cfg += fmt.Sprintf("\napi:\n  aws_credentials_file: %s\n", keys)
	e := startInProcess(t, writeConfig(t, cfg), "")
	return &awsEnv{env: e, t: t, keysFile: keys, home: t.TempDir()}
}

// endpoint is the AWS endpoint's URL.
func (a *awsEnv) endpoint() string { return "http://" + a.apiAddr + "/aws" }

// clientEnv is the environment of a client run with profile's keys and
// nothing from this machine's own AWS settings.
func (a *awsEnv) clientEnv(profile string, extra ...string) []string {
	return append([]string{
		"PATH=/usr/bin:/bin",
		"HOME=" + a.home,
		"AWS_SHARED_CREDENTIALS_FILE=" + a.keysFile,
		"AWS_CONFIG_FILE=" + filepath.Join(a.home, "no-config"),
		"AWS_PROFILE=" + profile,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1",
	}, extra...)
}

// cli runs the AWS CLI with profile's keys against the endpoint and
// returns its JSON output decoded, or its error with stderr.
func (a *awsEnv) cli(profile string, args ...string) (map[string]any, error) {
	a.t.Helper()
	full := append([]string{"--endpoint-url", a.endpoint(), "--output", "json"}, args...)
	cmd := exec.Command(awsCLI, full...)
	cmd.Env = a.clientEnv(profile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("aws %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	res := map[string]any{}
	if s := strings.TrimSpace(out.String()); s != "" {
		if err := json.Unmarshal([]byte(s), &res); err != nil {
			return nil, fmt.Errorf("aws %s: output is not JSON: %v: %s", strings.Join(args, " "), err, s)
		}
	}
	return res, nil
}

// mustCLI is cli that fails the test on an error.
func (a *awsEnv) mustCLI(profile string, args ...string) map[string]any {
	a.t.Helper()
	res, err := a.cli(profile, args...)
	if err != nil {
		a.t.Fatal(err)
	}
	return res
}

// boto runs a Python script with boto3 and profile's keys; the script
// finds the endpoint in ENDPOINT (boto3 1.26 does not read
// AWS_ENDPOINT_URL) and prints JSON, which is decoded.
func (a *awsEnv) boto(profile, script string) (any, error) {
	a.t.Helper()
	cmd := exec.Command(awsPython, "-c", "import boto3, json, os\nENDPOINT = os.environ['ENDPOINT']\n"+script)
	cmd.Env = a.clientEnv(profile, "ENDPOINT="+a.endpoint())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("boto3: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	var res any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("boto3: output is not JSON: %v: %s", err, out.String())
	}
	return res, nil
}

// dig follows a path of keys and indexes through decoded JSON.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
