// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test, Vm} from "./Test.sol";
import {KeyManager} from "../../src/KeyManager.sol";
import {IKeyManager} from "../../src/IKeyManager.sol";

/// @notice A deployed registry plus keys, blobs and EIP-712 digests computed independently of the contract.
abstract contract KeyManagerFixture is Test {
    uint256 internal constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    uint256 internal constant MASTER_PK = 0xA11CE;
    uint256 internal constant NEWCOMER_PK = 0xB0B;
    uint256 internal constant OTHER_PK = 0xBAD;

    bytes32 internal constant BOOTSTRAP_BLOB = 0x01000000000000000000000000000000000000000000000000000000000b0075;
    bytes32 internal constant REQUEST_BLOB = 0x0100000000000000000000000000000000000000000000000000000000000e57;
    bytes32 internal constant RESPONSE_BLOB = 0x0100000000000000000000000000000000000000000000000000000000000a25;
    bytes32 internal constant PROPOSAL_BLOB = 0x01000000000000000000000000000000000000000000000000000000000040a1;

    address internal owner = address(0x0123);
    address internal stranger = address(0xBEEF);
    KeyManager internal km;

    function setUp() public virtual {
        km = new KeyManager(owner, 0);
        vm.roll(1000);
        vm.warp(1_700_000_000);
    }

    // ------------------------------------------------------------ keys

    function _pubkey64(uint256 privateKey) internal returns (bytes memory) {
        Vm.Wallet memory wallet = vm.createWallet(privateKey);
        return abi.encodePacked(wallet.publicKeyX, wallet.publicKeyY);
    }

    function _pubkey33(uint256 privateKey) internal returns (bytes memory) {
        Vm.Wallet memory wallet = vm.createWallet(privateKey);
        return abi.encodePacked(uint8(2 + (wallet.publicKeyY & 1)), wallet.publicKeyX);
    }

    /// @dev 65 bytes r ‖ s ‖ v with v in {27, 28} as vm.sign returns it (RFC 6979, low s).
    function _sign(uint256 privateKey, bytes32 digest) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(privateKey, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Lowercase hex without 0x, from the vm.toString cheatcode (not the contract's encoder).
    function _hexNo0x(bytes memory data) internal pure returns (string memory) {
        bytes memory prefixed = bytes(vm.toString(data));
        bytes memory out = new bytes(prefixed.length - 2);
        for (uint256 i; i < out.length; ++i) {
            out[i] = prefixed[i + 2];
        }
        return string(out);
    }

    /// @dev The malleable twin of a signature: s' = n - s and the other parity.
    function _highS(bytes memory signature) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s, uint8 v) = _split(signature);
        return abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }

    function _withV(bytes memory signature, uint8 v) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 s,) = _split(signature);
        return abi.encodePacked(r, s, v);
    }

    function _split(bytes memory signature) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
    }

    // ------------------------------------------------------------ EIP-712 (written out, not taken from the contract)

    function _domainSeparator(address verifyingContract, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("KeyManager"),
                keccak256("1"),
                chainId,
                verifyingContract
            )
        );
    }

    /// @dev EIP-712 digest for some other domain (another registry or chain).
    function _typedFor(address verifyingContract, uint256 chainId, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(verifyingContract, chainId), structHash));
    }

    function _typed(bytes32 structHash) internal view returns (bytes32) {
        return _typedFor(address(km), block.chainid, structHash);
    }

    function _attestationStruct(string memory hostname, bytes32 appData) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(keccak256("Attestation(string hostname,bytes32 appData)"), keccak256(bytes(hostname)), appData)
        );
    }

    function _attestationDigest(string memory hostname, bytes32 appData) internal view returns (bytes32) {
        return _typed(_attestationStruct(hostname, appData));
    }

    function _responseStruct(uint256[] memory requestIds, bytes32 responseBlobHash, uint64 gen)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                keccak256("OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)"),
                keccak256(abi.encodePacked(requestIds)),
                responseBlobHash,
                gen
            )
        );
    }

    function _responseDigest(uint256[] memory requestIds, bytes32 responseBlobHash, uint64 gen)
        internal
        view
        returns (bytes32)
    {
        return _typed(_responseStruct(requestIds, responseBlobHash, gen));
    }

    function _receiptDigest(uint256 requestId, address master) internal view returns (bytes32) {
        return _typed(keccak256(abi.encode(keccak256("OnboardReceipt(uint256 requestId,address xPub)"), requestId, master)));
    }

    function _proposalDigest(
        uint64 proposalId,
        uint64 gen,
        bytes memory masterPubkey64,
        uint256[] memory recipientIds,
        bytes32 blobHash
    ) internal view returns (bytes32) {
        return _typed(
            keccak256(
                abi.encode(
                    keccak256(
                        "GenerationProposal(uint64 proposal,uint64 generation,bytes masterPubkey,uint256[] recipientIds,bytes32 proposalBlobHash)"
                    ),
                    proposalId,
                    gen,
                    keccak256(masterPubkey64),
                    keccak256(abi.encodePacked(recipientIds)),
                    blobHash
                )
            )
        );
    }

    function _ackDigest(uint64 proposalId, uint64 gen, address newXPub) internal view returns (bytes32) {
        return _typed(
            keccak256(
                abi.encode(keccak256("GenerationAck(uint64 proposal,uint64 generation,address xPub)"), proposalId, gen, newXPub)
            )
        );
    }

    function _escrowStruct(uint64 gen, uint64 guardianSet, bytes memory commitments, bytes[] memory shares)
        internal
        pure
        returns (bytes32)
    {
        bytes32[] memory hashes = new bytes32[](shares.length);
        for (uint256 i; i < shares.length; ++i) {
            hashes[i] = keccak256(shares[i]);
        }
        return keccak256(
            abi.encode(
                keccak256("GuardianEscrow(uint64 generation,uint64 guardianSet,bytes commitments,bytes[] encryptedShares)"),
                gen,
                guardianSet,
                keccak256(commitments),
                keccak256(abi.encodePacked(hashes))
            )
        );
    }

    function _releaseDigest(uint256 requestId, uint64 gen, bytes memory share) internal view returns (bytes32) {
        return _typed(
            keccak256(
                abi.encode(
                    keccak256("ShareRelease(uint256 requestId,uint64 generation,bytes encryptedShare)"),
                    requestId,
                    gen,
                    keccak256(share)
                )
            )
        );
    }

    // ------------------------------------------------------------ flows

    function _setBlob(bytes32 versionedHash) internal {
        bytes32[] memory hashes = new bytes32[](1);
        hashes[0] = versionedHash;
        vm.blobhashes(hashes);
    }

    function _clearBlobs() internal {
        vm.blobhashes(new bytes32[](0));
    }

    function _bootstrap() internal {
        _setBlob(BOOTSTRAP_BLOB);
        vm.prank(owner);
        km.bootstrap(_pubkey64(MASTER_PK));
    }

    function _request(uint256 privateKey) internal returns (uint256) {
        _setBlob(REQUEST_BLOB);
        return km.requestOnboard(_pubkey64(privateKey), uint64(block.number - 1));
    }

    function _ids(uint256 a) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](1);
        ids[0] = a;
    }

    function _ids(uint256 a, uint256 b) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](2);
        ids[0] = a;
        ids[1] = b;
    }

    function _ids(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](3);
        ids[0] = a;
        ids[1] = b;
        ids[2] = c;
    }

    function _fulfill(uint256[] memory requestIds) internal {
        _setBlob(RESPONSE_BLOB);
        km.fulfillOnboard(requestIds, _sign(MASTER_PK, _responseDigest(requestIds, RESPONSE_BLOB, 1)));
    }

    function _confirm(uint256 requestId, uint256 privateKey) internal {
        km.confirmOnboard(requestId, _sign(privateKey, _receiptDigest(requestId, vm.addr(MASTER_PK))));
    }

    /// @dev Answers `requestIds` under the current generation, signed by that generation's master key.
    function _fulfillAs(uint256[] memory requestIds, uint256 masterPk) internal {
        _setBlob(RESPONSE_BLOB);
        km.fulfillOnboard(requestIds, _sign(masterPk, _responseDigest(requestIds, RESPONSE_BLOB, km.generation())));
    }

    /// @dev Request, answer and confirmation: the node of `privateKey` becomes a member; returns its id.
    function _join(uint256 privateKey, uint256 masterPk) internal returns (uint256 id) {
        id = _request(privateKey);
        _fulfillAs(_ids(id), masterPk);
        km.confirmOnboard(id, _sign(privateKey, _receiptDigest(id, vm.addr(masterPk))));
    }

    /// @dev Proposes `newMasterPk` signed by the member (`proposerPk`, `proposerId`) with every member as recipient.
    function _propose(uint256 proposerPk, uint256 proposerId, uint256 newMasterPk, uint256[] memory recipients)
        internal
        returns (uint64 proposalId)
    {
        _setBlob(PROPOSAL_BLOB);
        uint64 gen = km.generation() + 1;
        bytes memory pubkey64 = _pubkey64(newMasterPk);
        bytes memory signature =
            _sign(proposerPk, _proposalDigest(km.proposalCount() + 1, gen, pubkey64, recipients, PROPOSAL_BLOB));
        return km.proposeGeneration(gen, proposerId, pubkey64, recipients, signature);
    }

    function _acknowledge(uint64 proposalId, uint256 memberPk, uint256 memberId) internal {
        IKeyManager.ProposalInfo memory p = km.proposal();
        km.acknowledgeGeneration(proposalId, memberId, _sign(memberPk, _ackDigest(proposalId, p.generation, p.xPub)));
    }

    function _status(uint256 requestId) internal view returns (uint256 status) {
        (,, uint8 s,) = km.getRequest(requestId);
        return s;
    }

    /// @dev base^e mod p by square-and-multiply (independent of the contract's modexp-precompile path).
    function _pow(uint256 base, uint256 e) internal pure returns (uint256 result) {
        result = 1;
        while (e != 0) {
            if (e & 1 == 1) result = mulmod(result, base, P);
            base = mulmod(base, base, P);
            e >>= 1;
        }
    }

    /// @dev Whether x is the abscissa of a secp256k1 point: Euler's criterion on x³ + 7.
    function _isAbscissa(uint256 x) internal pure returns (bool) {
        return _pow(addmod(mulmod(mulmod(x, x, P), x, P), 7, P), (P - 1) / 2) == 1;
    }

    /// @dev Some y with y² = x³ + 7 (p ≡ 3 mod 4); only meaningful when _isAbscissa(x).
    function _ordinate(uint256 x) internal pure returns (uint256) {
        return _pow(addmod(mulmod(mulmod(x, x, P), x, P), 7, P), (P + 1) / 4);
    }

    function _onCurve(uint256 x, uint256 y) internal pure returns (bool) {
        return x < P && y < P && mulmod(y, y, P) == addmod(mulmod(mulmod(x, x, P), x, P), 7, P);
    }
}
