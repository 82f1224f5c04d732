"""Signs a SAML document with signxml (the Python XML Signature library),
for the interoperability tests: reads the document on stdin, fills the
`<ds:Signature Id="placeholder"/>` it carries, writes the result on stdout.

usage: signxml_sign.py KEY_PEM CERT_PEM REFERENCE_ID C14N_URI [PREFIX ...]
"""
import sys

from lxml import etree
from signxml import SignatureReference, XMLSigner, methods

key_path, cert_path, reference, c14n = sys.argv[1:5]
prefixes = sys.argv[5:]
with open(key_path, "rb") as f:
    key = f.read()
with open(cert_path, "rb") as f:
    cert = f.read()
root = etree.fromstring(sys.stdin.buffer.read())
signer = XMLSigner(
    method=methods.enveloped,
    signature_algorithm="rsa-sha256",
    digest_algorithm="sha256",
    c14n_algorithm=c14n,
)
signed = signer.sign(
    root,
    key=key,
    cert=cert,
    # The PrefixList is for SignedInfo only: in enveloped mode signxml 5.2
    # digests the reference with it but does not write it on the
    # Reference's transform, a signature neither xmlsec1 nor jointure
    # verifies. An empty list keeps it off the reference.
    reference_uri=[SignatureReference("#" + reference, inclusive_ns_prefixes=[])],
    id_attribute="ID",
    inclusive_ns_prefixes=prefixes or None,
)
sys.stdout.buffer.write(etree.tostring(signed))
