package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
)

// Stream salts keep the random streams of one pod independent: adding a draw to the metrics model must not
// change which image a pod gets or when its random faults start.
const (
	streamIdentity uint64 = 0x6964656e74697479
	streamMetrics  uint64 = 0x6d657472696373
	streamFaults   uint64 = 0x6661756c7473
	streamNames    uint64 = 0x6e616d6573
	streamCluster  uint64 = 0x636c7573746572
)

// hash64 mixes the seed and the parts into one 64-bit value (FNV-1a, then a splitmix64 finaliser so that
// near-identical inputs give unrelated PCG seeds).
func hash64(seed uint64, parts ...string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	_, _ = h.Write(b[:])
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return splitmix(h.Sum64())
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRand returns a generator for one stream of one object.
func newRand(seed, stream uint64, parts ...string) *rand.Rand {
	h := hash64(seed, parts...)
	return rand.New(rand.NewPCG(h, splitmix(h^stream)))
}

// nameAlphabet is the alphabet of Kubernetes' generated name suffixes: no vowels and no 0/1/3, so suffixes
// never spell words and never look like pod ordinals.
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// shortID returns the 5-character suffix for the attempt-th name candidate of the n-th pod of a type.
func shortID(seed uint64, typ string, n, attempt int) string {
	r := newRand(seed, streamNames, typ, fmt.Sprint(n), fmt.Sprint(attempt))
	var b [5]byte
	for i := range b {
		b[i] = nameAlphabet[r.IntN(len(nameAlphabet))]
	}
	return string(b[:])
}

// fakeUID returns a deterministic RFC 4122-shaped UID, used until the apiserver assigns the real one.
func fakeUID(seed uint64, namespace, name string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "uid/%d/%s/%s", seed, namespace, name))
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// fakeContainerID returns a containerd-style container ID for one instance (restart) of a container.
func fakeContainerID(uid string, restarts int32) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "container/%s/%d", uid, restarts))
	return "containerd://" + hex.EncodeToString(sum[:])
}
