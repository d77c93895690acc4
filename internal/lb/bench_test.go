package lb

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// The proxy's cost per request, beside the same client and backend talking
// directly: the difference in ns/op and allocs/op is the balancer's.
// allocs/op counts the whole process (client and backend too), so only the
// difference to the direct case is the proxy's.
//
//	go test -run '^$' -bench . -benchmem ./internal/lb/
func BenchmarkProxy(b *testing.B) {
	be := newBackend(b, "a", nil)
	tcpYAML := fmt.Sprintf(`  - name: lb
    listeners: [{protocol: tcp, listen: LISTEN, target_group: tg}]
    target_groups:
      - {name: tg, protocol: tcp, targets: [{address: %s}], health_check: {protocol: tcp}}
`, be.addr())
	variants := []struct {
		name string
		url  func(t testing.TB) string
	}{
		{"direct", func(testing.TB) string { return be.srv.URL }},
		{"http-listener", func(t testing.TB) string {
			bal, url := start(t, tgYAML("round_robin", "address: "+be.addr()))
			waitHealthy(t, bal, "tg", 1)
			return url
		}},
		{"tcp-listener", func(t testing.TB) string {
			_, url := start(t, tcpYAML)
			return url
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			url := v.url(b)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			// Warm the connection pools.
			for range 10 {
				resp, err := client.Get(url + "/")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url + "/")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
