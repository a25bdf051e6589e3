// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IKeyManager} from "../src/IKeyManager.sol";

/// @title SignedDataVerifier
/// @notice Example consumer of the dstack `Sign` API on a keymanager network: it accepts data signed by an app's
/// `Sign` key (GetKey path "vms", purpose "signing", docs/protocol.md#dstack-api) when the key's signature chain
/// verifies against the registry's master key (`IKeyManager.verifySignatureChain`) for the app pinned at deployment.
/// @dev What `Sign` (algorithm `secp256k1` or `secp256k1_prehashed`) answers and what this contract takes:
/// - `signature`: 64 bytes r ‖ s over SHA-256(data) (`secp256k1`) or over the 32 bytes given (`secp256k1_prehashed`),
///   low s, no recovery byte; both recovery ids are tried.
/// - `chain`: the signing key uncompressed without 0x04 (the sidecar answers it compressed, 33 bytes; the caller
///   decompresses it off chain, so no modexp is spent here), and `signature_chain[1]`, `signature_chain[2]` with the
///   app key they recover to.
/// ed25519 `Sign` answers verify off chain only: the EVM has no ed25519 precompile.
contract SignedDataVerifier {
    /// @notice The GetKey purpose of dstack's signing key.
    string public constant PURPOSE = "signing";

    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice The registry whose master key roots every accepted chain.
    IKeyManager public immutable registry;

    /// @notice The app whose signing key is trusted.
    bytes20 public immutable appId;

    /// @notice The signing key and its chain, as `Sign` answers them.
    /// @param publicKey64 The signing key, uncompressed, without the 0x04 prefix (the answer's `public_key` decompressed).
    /// @param appPubkey33 The app key (compressed) signature_chain[1] recovers to.
    /// @param appSignature signature_chain[1]: the app key over keccak256("signing:" ‖ hex(compressed signing key)).
    /// @param kmsSignature signature_chain[2]: the master key over keccak256("dstack-kms-issued:" ‖ appId ‖ appPubkey33).
    struct KeyChain {
        bytes publicKey64;
        bytes appPubkey33;
        bytes appSignature;
        bytes kmsSignature;
    }

    /// @notice The constructor got the zero address or a zero appId.
    error SignedDataVerifierZeroArgument();

    /// @param registry_ The KeyManager registry.
    /// @param appId_ The signing app's 20-byte appId.
    constructor(IKeyManager registry_, bytes20 appId_) {
        if (address(registry_) == address(0) || appId_ == bytes20(0)) revert SignedDataVerifierZeroArgument();
        registry = registry_;
        appId = appId_;
    }

    /// @notice Whether `signature` over `data` was made by the app's `Sign` key, as issued by the registry's network.
    /// False, never a revert, on any malformed argument.
    /// @param data The signed bytes (`secp256k1`) or the 32-byte digest (`secp256k1_prehashed`).
    /// @param prehashed True for `secp256k1_prehashed`.
    /// @param signature 64 bytes r ‖ s (the answer's `signature`, = signature_chain[0]).
    /// @param chain The signing key and its chain.
    /// @return True when the data signature and the key's chain both verify.
    function verify(bytes calldata data, bool prehashed, bytes calldata signature, KeyChain calldata chain)
        external
        view
        returns (bool)
    {
        if (!_signedBy(data, prehashed, signature, chain.publicKey64)) return false;
        return registry.verifySignatureChain(
            appId, _compress(chain.publicKey64), chain.appPubkey33, chain.appSignature, chain.kmsSignature, PURPOSE
        );
    }

    /// @dev Whether the 64-byte low-s `signature` over the data's digest recovers to `publicKey64` (either parity).
    function _signedBy(bytes calldata data, bool prehashed, bytes calldata signature, bytes calldata publicKey64)
        private
        pure
        returns (bool)
    {
        if (publicKey64.length != 64 || signature.length != 64) return false;
        if (prehashed && data.length != 32) return false;
        bytes32 digest = prehashed ? bytes32(data) : sha256(data);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        if (r == bytes32(0) || s == bytes32(0) || uint256(s) > HALF_N) return false;
        address signer = address(uint160(uint256(keccak256(publicKey64))));
        return ecrecover(digest, 27, r, s) == signer || ecrecover(digest, 28, r, s) == signer;
    }

    /// @dev 0x02 | parity(y) ‖ x: the compressed form the chain signs.
    function _compress(bytes calldata pubkey64) private pure returns (bytes memory) {
        bytes32 x = bytes32(pubkey64[0:32]);
        uint256 y = uint256(bytes32(pubkey64[32:64]));
        return abi.encodePacked(uint8(2 + (y & 1)), x);
    }
}
