package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// The pet's "service" is what it offers on / and its data endpoints. It can
// be stopped while the process lives on (POST /service/stop), as a worker
// pool dies inside a container that still answers its liveness probe:
// /healthz keeps answering, so crash healing does not notice, and only the
// uptime metric does. POST /service/start (what the runbook calls) brings
// it back.

// serviceDown is set while the service is stopped.
var serviceDown atomic.Bool

func serviceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /service/stop", func(w http.ResponseWriter, r *http.Request) {
		serviceDown.Store(true)
		fmt.Println("pet: service stopped on request (the process lives on)")
		writeJSON(w, http.StatusOK, map[string]bool{"serving": false})
	})
	mux.HandleFunc("POST /service/start", func(w http.ResponseWriter, r *http.Request) {
		serviceDown.Store(false)
		fmt.Println("pet: service started")
		writeJSON(w, http.StatusOK, map[string]bool{"serving": true})
	})
	mux.HandleFunc("GET /service", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"serving": !serviceDown.Load()})
	})
}

// serving wraps the service's endpoints: 503 while it is stopped.
func serving(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if serviceDown.Load() && !strings.HasPrefix(r.URL.Path, "/service") && r.URL.Path != "/healthz" {
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("service stopped"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// pushUptime checks the service at self every interval and pushes 1 (it
// answered 200) or 0 as the metric PET_UPTIME_METRIC (default
// webapp-uptime) in namespace PET_UPTIME_NAMESPACE (default
// CustomNamespace) with the dimension InstanceId, to the controller's API
// (found from AUTOHEAL_METADATA_URL), as an operator's cron job would,
// with the instance's own credential (AUTOHEAL_INSTANCE_TOKEN): it may
// push the instance's own metrics, and nothing else unless its group is
// granted a role. It does nothing when PET_UPTIME_INTERVAL is unset or the
// pet does not run under autoheal.
func pushUptime(ctx context.Context, self string) {
	every, err := time.ParseDuration(os.Getenv("PET_UPTIME_INTERVAL"))
	md := os.Getenv("AUTOHEAL_METADATA_URL")
	id := os.Getenv("AUTOHEAL_INSTANCE_ID")
	i := strings.Index(md, "/v1/")
	if err != nil || every <= 0 || i < 0 || id == "" {
		return
	}
	api := md[:i] + "/v1/metrics"
	token := os.Getenv("AUTOHEAL_INSTANCE_TOKEN")
	warned := false
	metric := envOr("PET_UPTIME_METRIC", "webapp-uptime")
	ns := envOr("PET_UPTIME_NAMESPACE", "CustomNamespace")
	client := &http.Client{Timeout: every}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		up := 0.0
		if resp, err := client.Get(self); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				up = 1
			}
		}
		body, _ := json.Marshal(map[string]any{"Namespace": ns, "MetricData": []map[string]any{{
			"MetricName": metric, "Value": up, "Unit": "Count",
			"Dimensions": []map[string]string{{"Name": "InstanceId", "Value": id}},
		}}})
		if code, err := push(client, api, token, body); (err != nil || code != http.StatusOK) && !warned {
			// Once: the controller may be restarting; the next push counts.
			fmt.Printf("pet: push %s: status %d, %v\n", metric, code, err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// push posts one PutMetricData body with the instance's credential.
func push(client *http.Client, url, token string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
