// Command prober is a hostile instance for the tests of internal/server:
// run by autoheal as an unprivileged user, it gathers every credential it
// can find (its environment, the files of the state dir, other processes'
// environments) and tries each state-changing call of the API (given as
// arguments, "METHOD PATH BODY") with each, printing one JSON line per
// attempt and then "PROBE DONE". It then waits to be stopped.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// found is one place a credential was looked for.
type found struct {
	Source string `json:"source"`
	Err    string `json:"err,omitempty"`
}

// attempt is one call and its answer.
type attempt struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Cred   string `json:"cred"`
	Status int    `json:"status"`
	Body   string `json:"body,omitempty"`
}

func main() {
	out := json.NewEncoder(os.Stdout)
	md := os.Getenv("AUTOHEAL_METADATA_URL")
	base, _, _ := strings.Cut(md, "/v1/")
	creds := map[string]string{"none": "", "instance": os.Getenv("AUTOHEAL_INSTANCE_TOKEN")}
	var looked []found
	// Every file of the state dir it may read, as a token; the two that
	// hold the controller's secrets by name, whether or not it may list
	// the directory.
	root := os.Getenv("AUTOHEAL_STATE_DIR")
	for _, name := range []string{"api-token", "api-instance-key"} {
		p := filepath.Join(root, name)
		if b, err := readSmall(p); err != nil {
			looked = append(looked, found{Source: p, Err: err.Error()})
		} else {
			looked = append(looked, found{Source: p})
			if tok, ok := token(b); ok {
				creds["file:"+p] = tok
			}
		}
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			looked = append(looked, found{Source: p, Err: err.Error()})
			return nil
		}
		if d.IsDir() || strings.Contains(p, "/volumes/") {
			return nil
		}
		b, err := readSmall(p)
		if err != nil {
			looked = append(looked, found{Source: p, Err: err.Error()})
			return nil
		}
		looked = append(looked, found{Source: p})
		if tok, ok := token(b); ok {
			creds["file:"+p] = tok
		}
		return nil
	})
	// Other processes' credentials.
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if k, v, ok := strings.Cut(string(kv), "="); ok && (k == "AUTOHEAL_INSTANCE_TOKEN" || k == "AUTOHEAL_TOKEN") && v != creds["instance"] {
				creds["environ:"+p] = v
			}
		}
	}
	out.Encode(map[string]any{"found": looked, "credentials": len(creds)})
	client := &http.Client{Timeout: 30 * time.Second}
	for _, call := range os.Args[1:] {
		f := strings.SplitN(call, " ", 3)
		if len(f) < 2 {
			continue
		}
		body := ""
		if len(f) == 3 {
			body = f[2]
		}
		for name, tok := range creds {
			a := attempt{Method: f[0], Path: f[1], Cred: name}
			a.Status, a.Body = send(client, base, f[0], f[1], body, tok)
			out.Encode(a)
		}
	}
	fmt.Println("PROBE DONE")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}

// token is a file's first line, if it could be sent as a bearer token.
func token(b []byte) (string, bool) {
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	for _, c := range line {
		if c < 0x21 || c > 0x7e {
			return "", false
		}
	}
	return line, line != ""
}

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

func send(client *http.Client, base, method, path, body, tok string) (int, string) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(b)
}
