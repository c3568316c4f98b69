package cluster

import (
	"strings"
	"testing"
)

func TestCRC16Vector(t *testing.T) {
	// The check value of CRC16-XMODEM given in the Redis Cluster spec.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct{ key, tag string }{
		{"", ""},
		{"foo", "foo"},
		{"foo{bar}", "bar"},
		{"{user1000}.following", "user1000"},
		{"{user1000}.followers", "user1000"},
		{"{}foo", "{}foo"},
		{"foo{}{bar}", "foo{}{bar}"},
		{"foo{{bar}}zap", "{bar"},
		{"foo{bar}{zap}", "bar"},
		{"foo{bar", "foo{bar"},
		{"foo}bar{", "foo}bar{"},
		{"}{x}", "x"},
	}
	for _, tt := range tests {
		if got := HashTag(tt.key); got != tt.tag {
			t.Errorf("HashTag(%q) = %q, want %q", tt.key, got, tt.tag)
		}
	}
}

func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		slot int
	}{
		{"123456789", 12739},
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"{foo}bar", 12182},
		{"hello", 866},
	}
	for _, tt := range tests {
		if got := Slot(tt.key); got != tt.slot {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.slot)
		}
	}
	same := [][2]string{
		{"foo{bar}", "bar"},
		{"{user1000}.following", "{user1000}.followers"},
		{"foo{{bar}}zap", "{bar"},
	}
	for _, p := range same {
		if Slot(p[0]) != Slot(p[1]) {
			t.Errorf("Slot(%q)=%d != Slot(%q)=%d", p[0], Slot(p[0]), p[1], Slot(p[1]))
		}
	}
	// "{}foo" and "foo{}{bar}" hash the whole key, not "foo" / "bar".
	if Slot("{}foo") != int(crc16("{}foo"))%NumSlots || Slot("{}foo") == Slot("foo") {
		t.Errorf("Slot({}foo) must hash the whole key")
	}
	if Slot("foo{}{bar}") != int(crc16("foo{}{bar}"))%NumSlots {
		t.Errorf("Slot(foo{}{bar}) must hash the whole key")
	}
}

func FuzzSlot(f *testing.F) {
	for _, s := range []string{"", "123456789", "{}foo", "foo{bar}", "foo{}{bar}", "foo{{bar}}zap", "{", "}", "{a}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		s := Slot(key)
		if s < 0 || s >= NumSlots {
			t.Fatalf("Slot(%q) = %d out of range", key, s)
		}
		tag := HashTag(key)
		if !strings.Contains(key, tag) {
			t.Fatalf("HashTag(%q) = %q is not a substring", key, tag)
		}
		if tag != key {
			// A real tag: any key with the same tag lands in the same slot.
			if got := Slot("{" + tag + "}suffix"); got != s {
				t.Fatalf("Slot({%s}suffix) = %d, want %d", tag, got, s)
			}
			if strings.ContainsRune(tag, '}') || tag == "" {
				t.Fatalf("HashTag(%q) = %q contains '}' or is empty", key, tag)
			}
		}
	})
}

func BenchmarkSlot(b *testing.B) {
	for b.Loop() {
		Slot("{shardseq:orders:7}.ctr")
	}
}
