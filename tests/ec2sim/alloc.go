package ec2sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
)

var (
	errNoIPv6       = errors.New("subnet has no IPv6 CIDR")
	errSubnetFull   = errors.New("subnet has no free space")
	errOutsideRange = errors.New("outside the subnet's range")
	errReserved     = errors.New("reserved by AWS")
)

func (s *subnet) reserveV4(a netip.Addr) error {
	if !s.cidr.Contains(a) {
		return fmt.Errorf("address %s: %w", a, errOutsideRange)
	}
	if s.isReservedV4(a) {
		return fmt.Errorf("address %s: %w", a, errReserved)
	}
	if s.usedV4[a] {
		return fmt.Errorf("address %s: %w", a, errInUse)
	}
	s.usedV4[a] = true
	return nil
}

func (s *subnet) isReservedV4(a netip.Addr) bool {
	first := s.cidr.Addr()
	for range 4 {
		if a == first {
			return true
		}
		first = first.Next()
	}
	return a == lastAddr(s.cidr)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// allocV4 hands out the next free IPv4 address, in order.
func (s *subnet) allocV4() (netip.Addr, error) {
	start := s.nextV4
	for a := start; s.cidr.Contains(a); a = a.Next() {
		if !s.usedV4[a] && !s.isReservedV4(a) {
			s.usedV4[a] = true
			s.nextV4 = a.Next()
			return a, nil
		}
	}
	for a := s.cidr.Addr(); a != start; a = a.Next() {
		if !s.usedV4[a] && !s.isReservedV4(a) {
			s.usedV4[a] = true
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("ipv4 %s: %w", s.cidr, errSubnetFull)
}

// slotOf is the /80 slot (bits 64..79) of an address in the subnet's /64.
func slotOf(a netip.Addr) uint16 {
	b := a.As16()
	return binary.BigEndian.Uint16(b[8:10])
}

func (s *subnet) checkV6(a netip.Addr) error {
	if !s.v6.IsValid() {
		return errNoIPv6
	}
	if !s.v6.Contains(a) {
		return fmt.Errorf("address %s: %w", a, errOutsideRange)
	}
	b := a.As16()
	iid := binary.BigEndian.Uint64(b[8:])
	if iid < 4 || iid == ^uint64(0) {
		return fmt.Errorf("address %s: %w", a, errReserved)
	}
	return nil
}

func (s *subnet) reserveV6(a netip.Addr) error {
	if err := s.checkV6(a); err != nil {
		return err
	}
	if u := s.slots[slotOf(a)]; s.usedV6[a] || (u != nil && u.prefix) {
		return fmt.Errorf("address %s: %w", a, errInUse)
	}
	s.usedV6[a] = true
	s.slot(slotOf(a)).addrs++
	return nil
}

func (s *subnet) slot(n uint16) *slotUse {
	u := s.slots[n]
	if u == nil {
		u = &slotUse{}
		s.slots[n] = u
	}
	return u
}

func (s *subnet) freeV6(a netip.Addr) {
	if !s.usedV6[a] {
		return
	}
	delete(s.usedV6, a)
	n := slotOf(a)
	if u := s.slots[n]; u != nil {
		u.addrs--
		if u.addrs <= 0 && !u.prefix {
			delete(s.slots, n)
		}
	}
}

// allocV6 picks a random free address outside every delegated prefix.
func (s *subnet) allocV6(rng *rand.Rand) (netip.Addr, error) {
	if !s.v6.IsValid() {
		return netip.Addr{}, errNoIPv6
	}
	b := s.v6.Addr().As16()
	for range 1000 {
		binary.BigEndian.PutUint64(b[8:], rng.Uint64())
		a := netip.AddrFrom16(b)
		if s.checkV6(a) != nil || s.usedV6[a] {
			continue
		}
		if u := s.slots[slotOf(a)]; u != nil && u.prefix {
			continue
		}
		s.usedV6[a] = true
		s.slot(slotOf(a)).addrs++
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("ipv6 %s: %w", s.v6, errSubnetFull)
}

func (s *subnet) prefixAt(n uint16) netip.Prefix {
	b := s.v6.Addr().As16()
	binary.BigEndian.PutUint16(b[8:10], n)
	return netip.PrefixFrom(netip.AddrFrom16(b), 80)
}

func (s *subnet) reservePrefix(p netip.Prefix) error {
	if !s.v6.IsValid() {
		return errNoIPv6
	}
	if p.Bits() != 80 || p.Masked() != p || !s.v6.Contains(p.Addr()) {
		return fmt.Errorf("prefix %s: %w", p, errOutsideRange)
	}
	n := slotOf(p.Addr())
	if s.slots[n] != nil {
		return fmt.Errorf("prefix %s: %w", p, errInUse)
	}
	s.slots[n] = &slotUse{prefix: true}
	return nil
}

func (s *subnet) freePrefix(p netip.Prefix) {
	n := slotOf(p.Addr())
	if u := s.slots[n]; u != nil && u.prefix {
		delete(s.slots, n)
	}
}

// allocPrefix carves a random free /80 out of the /64: a slot holding no
// prefix and no address (slots 0 and 0xffff hold reserved addresses).
func (s *subnet) allocPrefix(rng *rand.Rand) (netip.Prefix, error) {
	if !s.v6.IsValid() {
		return netip.Prefix{}, errNoIPv6
	}
	for range 64 {
		n := uint16(rng.UintN(1 << 16))
		if s.slots[n] == nil {
			s.slots[n] = &slotUse{prefix: true}
			return s.prefixAt(n), nil
		}
	}
	start := rng.UintN(1 << 16)
	for i := range uint(1 << 16) {
		n := uint16(start + i)
		if s.slots[n] == nil {
			s.slots[n] = &slotUse{prefix: true}
			return s.prefixAt(n), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("ipv6 %s: %w", s.v6, errSubnetFull)
}
