#!/usr/bin/python3
"""Encrypts or decrypts a LUKS data segment with the volume key that
`cryptsetup luksDump --dump-volume-key` reports, using python3-cryptography
(not offvm's code): the oracle of offvm's LUKS reads and writes.

usage: luksdata.py enc|dec IMAGE PLAIN KEYHEX OFFSET SECTOR IVUNIT CIPHER
  enc: PLAIN's bytes are encrypted into IMAGE from OFFSET
  dec: IMAGE from OFFSET is decrypted into PLAIN (as long as PLAIN is)
  IVUNIT: bytes per IV step (512, or SECTOR for LUKS2 large sectors)
"""
import hashlib, struct, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

mode, image, plain, keyhex, off, sector, ivunit, spec = sys.argv[1:9]
key = bytes.fromhex(keyhex)
off, sector, ivunit = int(off), int(sector), int(ivunit)

def crypt(data, n, enc):
    iv = n * sector // ivunit
    if spec == "aes-xts-plain64":
        c = Cipher(algorithms.AES(key), modes.XTS(struct.pack("<QQ", iv, 0)))
    elif spec == "aes-cbc-essiv:sha256":
        salt = hashlib.sha256(key).digest()
        e = Cipher(algorithms.AES(salt), modes.ECB()).encryptor()
        c = Cipher(algorithms.AES(key), modes.CBC(e.update(struct.pack("<QQ", iv, 0))))
    else:
        sys.exit("cipher " + spec + " not in this helper")
    x = c.encryptor() if enc else c.decryptor()
    return x.update(data) + x.finalize()

with open(image, "r+b") as img:
    if mode == "enc":
        data = open(plain, "rb").read()
        assert len(data) % sector == 0
        img.seek(off)
        for n in range(len(data) // sector):
            img.write(crypt(data[n*sector:(n+1)*sector], n, True))
    else:
        import os
        size = os.path.getsize(plain)
        out = bytearray()
        img.seek(off)
        for n in range(size // sector):
            out += crypt(img.read(sector), n, False)
        open(plain, "wb").write(out)
