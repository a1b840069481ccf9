# pragma version 0.4.3
"""
@title quorum
@notice k-of-n signature sets: the relay committee and each chain's
        validator set. A message or checkpoint is accepted only when at
        least `threshold` distinct members of a set signed its digest.
@dev Sets are addressed by an id: 0 is the relay committee, a chain id is
     that chain's validator set (kept on the relay chain). Signatures must
     come sorted by signer address, strictly ascending, which makes the
     "same signer twice" check a comparison with the previous signer.
     Signatures follow OpenZeppelin's ECDSA rules: v is 27 or 28 and s is
     in the lower half of the curve order, so no signature has a second,
     malleable form. Every revert reason starts with "quorum: ".
"""

MAX_MEMBERS: constant(uint256) = 32
COMMITTEE: constant(uint256) = 0
# secp256k1n / 2 (0x7fff...20a0): a larger s is the malleable twin of a valid signature.
HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


struct Signature:
    v: uint8
    r: bytes32
    s: bytes32


_members: HashMap[uint256, DynArray[address, MAX_MEMBERS]]
_is_member: HashMap[uint256, HashMap[address, bool]]
_threshold: HashMap[uint256, uint256]


@internal
def _define(set_id: uint256, members: DynArray[address, MAX_MEMBERS], threshold: uint256):
    assert len(self._members[set_id]) == 0, "quorum: set already defined"
    assert len(members) > 0, "quorum: empty set"
    assert threshold > 0 and threshold <= len(members), "quorum: threshold out of range"
    for m: address in members:
        assert m != empty(address), "quorum: zero address member"
        assert not self._is_member[set_id][m], "quorum: duplicate member"
        self._is_member[set_id][m] = True
    self._members[set_id] = members
    self._threshold[set_id] = threshold


@internal
@pure
def _signer(digest: bytes32, sig: Signature) -> address:
    """The address that signed `digest` (never zero: a bad signature reverts)."""
    assert sig.v == 27 or sig.v == 28, "quorum: invalid signature v"
    assert convert(sig.s, uint256) <= HALF_ORDER, "quorum: high-s signature"
    signer: address = ecrecover(digest, sig.v, sig.r, sig.s)
    assert signer != empty(address), "quorum: invalid signature"
    return signer


@internal
@view
def _require(set_id: uint256, digest: bytes32, signatures: DynArray[Signature, MAX_MEMBERS]):
    last: address = empty(address)
    for sig: Signature in signatures:
        signer: address = self._signer(digest, sig)
        assert self._is_member[set_id][signer], "quorum: signer not a member"
        assert signer != last, "quorum: same signer twice"
        assert convert(signer, uint160) > convert(last, uint160), "quorum: signers not sorted"
        last = signer
    assert len(signatures) >= self._threshold[set_id], "quorum: not enough signatures"


@external
@view
def members(set_id: uint256) -> DynArray[address, MAX_MEMBERS]:
    """
    @notice The members of a signature set.
    @param set_id 0 for the relay committee, a chain id for its validators.
    @return The member addresses, in the order they were defined.
    """
    return self._members[set_id]


@external
@view
def threshold(set_id: uint256) -> uint256:
    """
    @notice How many distinct member signatures a digest needs.
    @param set_id 0 for the relay committee, a chain id for its validators.
    @return The threshold k (0 if the set is undefined).
    """
    return self._threshold[set_id]
