package cluster

// NumSlots is the number of hash slots of a Redis Cluster. It is fixed by the
// cluster specification; every key maps to exactly one of them.
const NumSlots = 16384

// crc16tab is the CRC16-XMODEM (polynomial 0x1021, init 0) table. It is a
// compile-time constant table, not mutable state: Redis's key-to-slot mapping
// is defined in terms of this exact CRC, so it must never change.
var crc16tab = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// crc16 returns the CRC16-XMODEM checksum Redis Cluster uses for key hashing.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16tab[byte(crc>>8)^s[i]]
	}
	return crc
}

// HashTag returns the part of key that Redis Cluster hashes: the content of
// the first "{...}" pair if it is non-empty, otherwise the whole key. Only the
// first '{' and the first '}' after it count, exactly as in the cluster spec,
// so "foo{}{bar}" hashes the whole key and "foo{{bar}}zap" hashes "{bar".
// Counter placement relies on this: keys sharing a tag share a slot.
func HashTag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j == i+1 {
					return key // "{}": empty tag, hash the whole key
				}
				return key[i+1 : j]
			}
		}
		return key // '{' without a closing '}'
	}
	return key
}

// Slot returns the hash slot (0..16383) Redis Cluster assigns to key.
func Slot(key string) int {
	return int(crc16(HashTag(key))) % NumSlots
}
