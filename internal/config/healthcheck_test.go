package config

import "testing"

func TestHealthCheckPort(t *testing.T) {
	for _, c := range []struct {
		port   string
		num    int
		isNum  bool
		addr   string
		isAddr bool
	}{
		{"8080", 8080, true, "", false},
		{"http", 0, false, "http", true},
		{"", 0, false, "", false},
	} {
		h := HealthCheck{Port: c.port}
		n, isNum := h.PortNumber()
		a, isAddr := h.AddressName()
		if n != c.num || isNum != c.isNum || a != c.addr || isAddr != c.isAddr {
			t.Errorf("Port %q: PortNumber %d %v, AddressName %q %v", c.port, n, isNum, a, isAddr)
		}
	}
}
