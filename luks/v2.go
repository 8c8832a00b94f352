package luks

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// secondaryOffsets are where cryptsetup may put the second LUKS2 header
// (its JSON area sizes), tried when the first is damaged.
var secondaryOffsets = []int64{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}

const maxV2Header = 4 << 20

// ErrUnsupported marks LUKS2 volumes whose requirements offvm does not
// meet (an unfinished re-encryption, an integrity segment).
var ErrUnsupported = errors.New("unsupported LUKS2 volume")

// readV2 reads the newer valid copy of the two LUKS2 headers.
func readV2(dev io.ReaderAt, size int64) (*Header, error) {
	first, err1 := readV2At(dev, 0, size)
	var second *v2copy
	var err2 error
	offs := secondaryOffsets
	if first != nil {
		offs = []int64{first.v2HeaderLen}
	}
	for _, o := range offs {
		if second, err2 = readV2At(dev, o, size); second != nil {
			break
		}
	}
	switch {
	case first == nil && second == nil:
		return nil, fmt.Errorf("luks2: both headers damaged: %v; %w", err2, err1)
	case first == nil:
		return second.Header, nil
	case second == nil || first.seq >= second.seq:
		return first.Header, nil
	default:
		return second.Header, nil
	}
}

type v2copy struct {
	*Header
	seq uint64
}

func readV2At(dev io.ReaderAt, off, size int64) (*v2copy, error) {
	b := make([]byte, 4096)
	if _, err := dev.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("luks2 header at %d: %w", off, err)
	}
	want := []byte("LUKS\xba\xbe")
	if off != 0 {
		want = []byte("SKUL\xba\xbe")
	}
	if !bytes.Equal(b[:6], want) || binary.BigEndian.Uint16(b[6:]) != 2 {
		return nil, fmt.Errorf("luks2 header at %d: magic: %w", off, ErrCorrupt)
	}
	hsize := int64(binary.BigEndian.Uint64(b[8:]))
	if hsize < 4096+4096 || hsize > maxV2Header || hsize%4096 != 0 || int64(binary.BigEndian.Uint64(b[256:])) != off {
		return nil, fmt.Errorf("luks2 header at %d: size %d: %w", off, hsize, ErrCorrupt)
	}
	all := make([]byte, hsize)
	if _, err := dev.ReadAt(all, off); err != nil {
		return nil, fmt.Errorf("luks2 header at %d: %w", off, err)
	}
	if alg := cstr(all[72:104]); alg != "sha256" {
		return nil, fmt.Errorf("luks2 header at %d: checksum %q: %w", off, alg, ErrUnsupported)
	}
	sum := clone(all[448:480])
	clear(all[448:512])
	if got := sha256.Sum256(all); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("luks2 header at %d: checksum mismatch: %w", off, ErrCorrupt)
	}
	h, err := parseV2JSON(bytes.TrimRight(all[4096:], "\x00"), size)
	if err != nil {
		return nil, fmt.Errorf("luks2 header at %d: %w", off, err)
	}
	h.UUID, h.Label, h.v2HeaderLen = cstr(all[168:208]), cstr(all[24:72]), hsize
	return &v2copy{h, binary.BigEndian.Uint64(all[16:])}, nil
}

// The JSON area, as far as offvm reads it. Offsets and sizes are
// decimal strings (they may exceed 2^53).
type v2JSON struct {
	Keyslots map[string]struct {
		Type    string `json:"type"`
		KeySize int    `json:"key_size"`
		AF      struct {
			Type    string `json:"type"`
			Stripes int    `json:"stripes"`
			Hash    string `json:"hash"`
		} `json:"af"`
		Area struct {
			Type       string `json:"type"`
			Offset     string `json:"offset"`
			Size       string `json:"size"`
			Encryption string `json:"encryption"`
			KeySize    int    `json:"key_size"`
		} `json:"area"`
		KDF struct {
			Type       string `json:"type"`
			Hash       string `json:"hash"`
			Iterations int    `json:"iterations"`
			Time       int    `json:"time"`
			Memory     int    `json:"memory"`
			CPUs       int    `json:"cpus"`
			Salt       string `json:"salt"`
		} `json:"kdf"`
	} `json:"keyslots"`
	Segments map[string]struct {
		Type       string          `json:"type"`
		Offset     string          `json:"offset"`
		Size       string          `json:"size"`
		IVTweak    string          `json:"iv_tweak"`
		Encryption string          `json:"encryption"`
		SectorSize int             `json:"sector_size"`
		Integrity  json.RawMessage `json:"integrity"`
	} `json:"segments"`
	Digests map[string]struct {
		Type       string   `json:"type"`
		Keyslots   []string `json:"keyslots"`
		Segments   []string `json:"segments"`
		Hash       string   `json:"hash"`
		Iterations int      `json:"iterations"`
		Salt       string   `json:"salt"`
		Digest     string   `json:"digest"`
	} `json:"digests"`
	Config struct {
		Requirements struct {
			Mandatory []string `json:"mandatory"`
		} `json:"requirements"`
	} `json:"config"`
}

func parseV2JSON(b []byte, size int64) (*Header, error) {
	var j v2JSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("json area: %v: %w", err, ErrCorrupt)
	}
	if r := j.Config.Requirements.Mandatory; len(r) > 0 {
		return nil, fmt.Errorf("requirements %v (an unfinished re-encryption?): %w", r, ErrUnsupported)
	}
	if len(j.Segments) != 1 {
		return nil, fmt.Errorf("%d segments (re-encryption in progress?): %w", len(j.Segments), ErrUnsupported)
	}
	h := &Header{Version: 2}
	var segID string
	for id, s := range j.Segments {
		segID = id
		if s.Type != "crypt" || len(s.Integrity) > 0 && string(s.Integrity) != "null" {
			return nil, fmt.Errorf("segment %s of type %s (integrity?): %w", id, s.Type, ErrUnsupported)
		}
		var err error
		if h.DataOffset, err = num(s.Offset); err != nil || h.DataOffset > size {
			return nil, fmt.Errorf("segment offset %q: %w", s.Offset, ErrCorrupt)
		}
		h.DataSize = -1
		if s.Size != "dynamic" {
			if h.DataSize, err = num(s.Size); err != nil || h.DataOffset+h.DataSize > size {
				return nil, fmt.Errorf("segment size %q: %w", s.Size, ErrCorrupt)
			}
		}
		if t, _ := num(s.IVTweak); t != 0 {
			return nil, fmt.Errorf("iv_tweak %s: %w", s.IVTweak, ErrUnsupported)
		}
		h.Cipher, h.SectorSize = s.Encryption, s.SectorSize
		if h.SectorSize != 512 && h.SectorSize != 1024 && h.SectorSize != 2048 && h.SectorSize != 4096 {
			return nil, fmt.Errorf("sector size %d: %w", h.SectorSize, ErrCorrupt)
		}
	}
	var slotIDs []string
	for _, d := range j.Digests {
		if d.Type != "pbkdf2" || !contains(d.Segments, segID) {
			continue
		}
		h.digest = digest{hash: d.Hash, iterations: d.Iterations, salt: b64(d.Salt), value: b64(d.Digest)}
		slotIDs = d.Keyslots
	}
	if h.digest.value == nil || h.digest.iterations <= 0 {
		return nil, fmt.Errorf("no pbkdf2 digest for segment %s: %w", segID, ErrCorrupt)
	}
	sort.Strings(slotIDs)
	for _, id := range slotIDs {
		s, ok := j.Keyslots[id]
		if !ok || s.Type != "luks2" || s.AF.Type != "luks1" || s.Area.Type != "raw" {
			continue
		}
		n, _ := strconv.Atoi(id)
		ks := Keyslot{ID: n, Stripes: s.AF.Stripes, AFHash: s.AF.Hash, Cipher: s.Area.Encryption, KeyBytes: s.KeySize, AreaKeyBytes: s.Area.KeySize,
			KDF: KDF{Type: s.KDF.Type, Hash: s.KDF.Hash, Iterations: s.KDF.Iterations, Time: s.KDF.Time, MemoryKiB: s.KDF.Memory, CPUs: s.KDF.CPUs, Salt: b64(s.KDF.Salt)}}
		var e1, e2 error
		ks.AreaOff, e1 = num(s.Area.Offset)
		ks.AreaSize, e2 = num(s.Area.Size)
		if e1 != nil || e2 != nil || s.KeySize <= 0 {
			return nil, fmt.Errorf("keyslot %s area: %w", id, ErrCorrupt)
		}
		if h.KeyBytes == 0 {
			h.KeyBytes = s.KeySize
		}
		if err := ks.check(size); err != nil {
			return nil, fmt.Errorf("keyslot %s: %w", id, err)
		}
		h.Slots = append(h.Slots, ks)
	}
	if h.KeyBytes <= 0 || h.KeyBytes > 128 {
		h.KeyBytes = 64
	}
	return h, nil
}

func num(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return n, nil
}

func b64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
