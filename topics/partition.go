package topics

import "hash"

// Murmur2 is Kafka's default partitioning hash (the Java client's Utils.murmur2), so that a
// command produced by any Kafka client with default settings lands on the same partition as
// the one goka reads its key's state from.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	i := 0
	for ; n-i >= 4; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// PartitionOf is Kafka's default partition of key among n partitions:
// (murmur2(key) & 0x7fffffff) % n.
func PartitionOf(key string, n int32) int32 {
	return (Murmur2([]byte(key)) & 0x7fffffff) % n
}

// Hasher returns the hash goka must use everywhere (processors, views, emitters). goka maps a
// key to abs(int32(Sum32())) % n; Sum32 here is already murmur2 & 0x7fffffff, so goka's
// mapping equals Java's default partitioner.
func Hasher() func() hash.Hash32 {
	return func() hash.Hash32 { return &murmurHash{} }
}

// murmurHash buffers the key (murmur2 is not streaming) and hashes it on Sum32.
type murmurHash struct{ buf []byte }

func (h *murmurHash) Write(p []byte) (int, error) { h.buf = append(h.buf, p...); return len(p), nil }
func (h *murmurHash) Sum(b []byte) []byte {
	s := h.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}
func (h *murmurHash) Reset()         { h.buf = h.buf[:0] }
func (h *murmurHash) Size() int      { return 4 }
func (h *murmurHash) BlockSize() int { return 4 }
func (h *murmurHash) Sum32() uint32  { return uint32(Murmur2(h.buf) & 0x7fffffff) }
