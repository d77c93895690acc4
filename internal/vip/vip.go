// Package vip moves IP addresses between cluster hosts, as keepalived
// does: the host that runs a group adds the group's virtual IP to an
// interface and announces it with gratuitous ARP, so that the machines on
// the link send to it at once; a fenced host removes it
// (docs/design.md#13-the-cluster).
//
// The address is held by its own process (Hold, started as `autoheal
// __autoheal_vip`), not by the controller: it must outlive a controller
// that dies, as the pets do, and go when they go, at the deadline the
// controller renews with its host's lease (provider/local's deadline
// file). A host whose lease can lapse thus gives up the address before
// another host may take it.
package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is a virtual IP and the interface it goes on.
type Addr struct {
	// Prefix is the address with its subnet's length: 10.0.0.100/24.
	Prefix netip.Prefix
	// Interface is the interface's name; "" picks the interface that has
	// an address in Prefix's subnet (InterfaceFor).
	Interface string
}

// String is the form Parse reads: 10.0.0.100/24 or 10.0.0.100/24@eth0.
func (a Addr) String() string {
	if a.Interface == "" {
		return a.Prefix.String()
	}
	return a.Prefix.String() + "@" + a.Interface
}

// Parse reads an Addr written as String writes it. Only IPv4: IPv6 would
// be announced with unsolicited neighbour advertisements, not built.
func Parse(s string) (Addr, error) {
	p, iface, _ := strings.Cut(s, "@")
	pfx, err := netip.ParsePrefix(p)
	if err != nil {
		return Addr{}, fmt.Errorf("vip %q: write an IPv4 address with its prefix length, as 10.0.0.100/24", s)
	}
	if !pfx.Addr().Is4() {
		return Addr{}, fmt.Errorf("vip %q: only IPv4 addresses are announced (gratuitous ARP)", s)
	}
	return Addr{Prefix: pfx, Interface: iface}, nil
}

// link returns the interface a goes on.
func (a Addr) link() (netlink.Link, error) {
	name := a.Interface
	if name == "" {
		var err error
		if name, err = InterfaceFor(a.Prefix); err != nil {
			return nil, err
		}
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("vip %s: interface %s: %w", a.Prefix, name, err)
	}
	return l, nil
}

// InterfaceFor names the interface that has an address in p's subnet,
// other than p's own address: where a virtual IP of that subnet belongs.
func InterfaceFor(p netip.Prefix) (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	subnet := p.Masked()
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if ok && subnet.Contains(ip.Unmap()) && ip.Unmap() != p.Addr() {
				return ifc.Name, nil
			}
		}
	}
	return "", fmt.Errorf("vip %s: no interface of this host has an address in %s: name one (interface)", p, subnet)
}

func (a Addr) nl() *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), 32)}}
}

// Add puts a on its interface; it is not an error if it is there already.
func Add(a Addr) error {
	l, err := a.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a.nl()); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("vip %s: add to %s: %w", a.Prefix, l.Attrs().Name, err)
	}
	return nil
}

// Del removes a from its interface; it is not an error if it is not there.
func Del(a Addr) error {
	l, err := a.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, a.nl()); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("vip %s: remove from %s: %w", a.Prefix, l.Attrs().Name, err)
	}
	return nil
}

// Held reports whether a is on its interface now.
func Held(a Addr) (bool, error) {
	l, err := a.link()
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a.Prefix.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// Announce broadcasts one gratuitous ARP request for a from its
// interface (sender and target address both a's), as keepalived does: the
// machines on the link that know the address update it to this host's
// hardware address at once instead of when their entry expires.
func Announce(a Addr) error {
	l, err := a.link()
	if err != nil {
		return err
	}
	attrs := l.Attrs()
	if len(attrs.HardwareAddr) != 6 {
		return fmt.Errorf("vip %s: interface %s has no Ethernet address to announce", a.Prefix, attrs.Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("vip %s: arp socket: %w", a.Prefix, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: attrs.Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(fd, garp(attrs.HardwareAddr, a.Prefix.Addr()), 0, to); err != nil {
		return fmt.Errorf("vip %s: announce on %s: %w", a.Prefix, attrs.Name, err)
	}
	return nil
}

// garp is the ARP payload of a gratuitous request for ip from mac.
func garp(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[2:], 0x0800) // IPv4
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], 1) // request
	copy(b[8:14], mac)
	ip4 := ip.As4()
	copy(b[14:18], ip4[:])
	// Target hardware address zero, target protocol address the same IP.
	copy(b[24:28], ip4[:])
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
