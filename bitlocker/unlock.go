package bitlocker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/offvm/offvm/keys"
)

// ErrNoSecret means none of the secrets given opens the volume.
var ErrNoSecret = errors.New("no secret unlocks the volume")

// VolumeKey is the unwrapped FVEK and how it was reached.
type VolumeKey struct {
	Method uint16
	FVEK   []byte
	// Via names the protector that opened the volume ("recovery password").
	Via string
	// Line is the secret's line in the keys file (0 for a clear key).
	Line int
}

// unwrap decrypts the AES-CCM datum d with key and returns the key datum
// inside: its algorithm and bytes.
func unwrap(d Datum, key []byte) (uint16, []byte, error) {
	if d.Value != valueAESCCM || len(d.Body) < 28 {
		return 0, nil, errors.New("not an AES-CCM datum")
	}
	pt, err := ccmOpen(key, d.Body[:12], d.Body[12:28], d.Body[28:])
	if err != nil {
		return 0, nil, err
	}
	if len(pt) < 12 {
		return 0, nil, errors.New("wrapped key too short")
	}
	size := int(binary.LittleEndian.Uint16(pt))
	if size < 12 || size > len(pt) || binary.LittleEndian.Uint16(pt[4:]) != valueKey {
		return 0, nil, errors.New("wrapped datum is not a key")
	}
	return binary.LittleEndian.Uint16(pt[8:]), pt[12:size], nil
}

// openVMK returns the VMK that key unwraps from protector v.
func openVMK(v VMK, key []byte) ([]byte, error) {
	ccm, ok := v.Datum.nested(valueAESCCM)
	if !ok {
		return nil, errors.New("protector has no wrapped key")
	}
	_, vmk, err := unwrap(ccm, key)
	return vmk, err
}

// stretchedKey derives the key of a password or recovery protector.
func stretchedKey(v VMK, hash [32]byte) ([]byte, error) {
	st, ok := v.Datum.nested(valueStretch)
	if !ok || len(st.Body) < 20 {
		return nil, errors.New("protector has no salt")
	}
	return stretch(hash, st.Body[4:20]), nil
}

// Unlock finds the FVEK with the first secret that opens a protector; a
// clear key (protection suspended) needs none.
func Unlock(m *Metadata, secrets []keys.Secret) (*VolumeKey, error) {
	if m.FVEK == nil {
		return nil, errors.New("metadata holds no volume key")
	}
	for _, v := range m.VMKs {
		if v.Protection != ProtClearKey {
			continue
		}
		if k, ok := v.Datum.nested(valueKey); ok {
			_, clear := k.keyBytes()
			if vmk, err := openVMK(v, clear); err == nil {
				return finish(m, vmk, "clear key", 0)
			}
		}
	}
	for _, s := range secrets {
		for _, v := range m.VMKs {
			vmk, err := trySecret(v, s)
			if err == nil && vmk != nil {
				return finish(m, vmk, ProtectorName(v.Protection), s.Line)
			}
		}
	}
	return nil, ErrNoSecret
}

// trySecret returns the VMK if s opens protector v, nil if s is not of
// the protector's kind.
func trySecret(v VMK, s keys.Secret) ([]byte, error) {
	switch {
	case s.Kind == keys.Recovery && v.Protection == ProtRecovery:
		rk, err := RecoveryKey(string(s.Value))
		if err != nil {
			return nil, err
		}
		key, err := stretchedKey(v, recoveryHash(rk))
		if err != nil {
			return nil, err
		}
		return openVMK(v, key)
	case s.Kind == keys.Password && v.Protection == ProtPassword:
		key, err := stretchedKey(v, passwordHash(string(s.Value)))
		if err != nil {
			return nil, err
		}
		return openVMK(v, key)
	case s.Kind == keys.BEK:
		bek, err := ParseBEK(s.Value)
		if err != nil || bek.GUID != v.GUID {
			return nil, err
		}
		return openVMK(v, bek.Key)
	}
	return nil, nil
}

func finish(m *Metadata, vmk []byte, via string, line int) (*VolumeKey, error) {
	method, fvek, err := unwrap(*m.FVEK, vmk)
	if err != nil {
		return nil, fmt.Errorf("volume key: %w", err)
	}
	if m.Algorithm >= AES128Diffuser && m.Algorithm <= AES256XTS {
		method = m.Algorithm
	}
	return &VolumeKey{Method: method, FVEK: fvek, Via: via, Line: line}, nil
}
