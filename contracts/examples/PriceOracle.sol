// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IKeyManager} from "../src/IKeyManager.sol";

/// @title PriceOracle
/// @notice Example consumer of a keymanager network: it stores a price only when the report is signed by a key
/// the network derived for one app (the `appId` pinned at deployment) for one purpose (`PURPOSE`), as proven by the
/// key's dstack signature chain checked against the registry's master key with
/// `IKeyManager.verifySignatureChain` (docs/protocol.md#keys-and-derivations, docs/protocol.md#registry-contract). The app gets that key and its chain from the sidecar's
/// dstack-compatible `GetKey` (path of its choice, purpose `price-oracle`) and never needs the master secret.
/// @dev What a reporter sends with each report:
/// - `derivedPubkey64`: the signing key's uncompressed public key (x ‖ y, no 0x04). The oracle hashes it into the
///   signer's address and compresses it for the chain check, so no decompression (a modexp) is needed on chain.
///   It need not be checked on the curve: an off-curve (x, y) has an address no signature recovers to.
/// - `appPubkey33`, `appSignature`, `kmsSignature`: the app public key and the two signatures of the GetKey chain.
/// Each report pays one chain check (~20-40k gas); a production oracle might cache verified signers per registry
/// generation instead.
contract PriceOracle {
    /// @notice The GetKey purpose every reporting key must be issued for.
    string public constant PURPOSE = "price-oracle";

    /// @notice Domain tag of the report digest.
    bytes32 public constant REPORT_TAG = keccak256("keymanager.example.PriceReport.v1");

    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice A price observation.
    /// @param pair Identifier of the pair, e.g. keccak256("ETH/USD").
    /// @param price Price with the pair's fixed decimals.
    /// @param timestamp Observation time (unix seconds); must increase per pair.
    struct Report {
        bytes32 pair;
        uint256 price;
        uint64 timestamp;
    }

    /// @notice The reporting key and its dstack signature chain.
    /// @param derivedPubkey64 Uncompressed public key of the key that signed the report (64 bytes, no prefix).
    /// @param appPubkey33 Compressed public key of the app key (signature_chain[0]'s signer).
    /// @param appSignature signature_chain[0]: the app key over keccak256(PURPOSE ‖ ":" ‖ hex(derived key, compressed)).
    /// @param kmsSignature signature_chain[1]: the master key over keccak256("dstack-kms-issued:" ‖ appId ‖ appPubkey33).
    struct KeyChain {
        bytes derivedPubkey64;
        bytes appPubkey33;
        bytes appSignature;
        bytes kmsSignature;
    }

    /// @notice Latest accepted price of a pair.
    struct Price {
        uint256 price;
        uint64 timestamp;
    }

    /// @notice The registry whose master key roots every accepted chain.
    IKeyManager public immutable registry;

    /// @notice The app whose derived keys may report.
    bytes20 public immutable appId;

    mapping(bytes32 pair => Price) private _prices;

    /// @notice A report was accepted.
    /// @param pair The pair.
    /// @param price The new price.
    /// @param timestamp The report's observation time.
    /// @param signer Address of the derived key that signed it.
    event PriceReported(bytes32 indexed pair, uint256 price, uint64 timestamp, address indexed signer);

    /// @notice The constructor got the zero address or a zero appId.
    error PriceOracleZeroArgument();

    /// @notice `derivedPubkey64` is not 64 bytes.
    /// @param length Its length.
    error PriceOracleInvalidPubkeyLength(uint256 length);

    /// @notice The report signature is malformed or was not made by the key in `derivedPubkey64`.
    error PriceOracleInvalidSignature();

    /// @notice The key's chain does not verify against the registry for this app and purpose.
    error PriceOracleUntrustedKey();

    /// @notice The report is not newer than the stored price of its pair (a replay or a late report).
    /// @param timestamp The report's time.
    /// @param latest The stored price's time.
    error PriceOracleStaleReport(uint64 timestamp, uint64 latest);

    /// @notice The report claims a time after the current block.
    /// @param timestamp The report's time.
    error PriceOracleFutureReport(uint64 timestamp);

    /// @param registry_ The KeyManager registry.
    /// @param appId_ The reporting app's 20-byte appId (for a pod: `keccak256("keymanager.app.v1:" ‖ podName)[0:20]`,
    /// or the id it is pinned to).
    constructor(IKeyManager registry_, bytes20 appId_) {
        if (address(registry_) == address(0) || appId_ == bytes20(0)) revert PriceOracleZeroArgument();
        registry = registry_;
        appId = appId_;
    }

    /// @notice Stores `report` if it is signed by a key the registry's network issued to `appId` for `PURPOSE`.
    /// @param report The observation.
    /// @param signature 65 bytes r ‖ s ‖ v (v in {0, 1, 27, 28}, low s) by the derived key over `reportDigest(report)`.
    /// @param chain The derived key and its signature chain.
    function submit(Report calldata report, bytes calldata signature, KeyChain calldata chain) external {
        if (report.timestamp > block.timestamp) revert PriceOracleFutureReport(report.timestamp);
        uint64 latest = _prices[report.pair].timestamp;
        if (report.timestamp <= latest) revert PriceOracleStaleReport(report.timestamp, latest);
        if (chain.derivedPubkey64.length != 64) revert PriceOracleInvalidPubkeyLength(chain.derivedPubkey64.length);

        address signer = address(uint160(uint256(keccak256(chain.derivedPubkey64))));
        if (_recover(reportDigest(report), signature) != signer) revert PriceOracleInvalidSignature();
        bool trusted = registry.verifySignatureChain(
            appId, _compress(chain.derivedPubkey64), chain.appPubkey33, chain.appSignature, chain.kmsSignature, PURPOSE
        );
        if (!trusted) revert PriceOracleUntrustedKey();

        _prices[report.pair] = Price(report.price, report.timestamp);
        emit PriceReported(report.pair, report.price, report.timestamp, signer);
    }

    /// @notice The digest a reporter signs: bound to this oracle and chain, so a report cannot be replayed elsewhere.
    /// @param report The observation.
    /// @return keccak256(abi.encode(REPORT_TAG, chainid, this, pair, price, timestamp)).
    function reportDigest(Report calldata report) public view returns (bytes32) {
        return keccak256(abi.encode(REPORT_TAG, block.chainid, address(this), report.pair, report.price, report.timestamp));
    }

    /// @notice Latest accepted price of `pair`.
    /// @param pair The pair.
    /// @return price The price (0 if none).
    /// @return timestamp Its observation time (0 if none).
    function latestPrice(bytes32 pair) external view returns (uint256 price, uint64 timestamp) {
        Price storage p = _prices[pair];
        return (p.price, p.timestamp);
    }

    /// @dev 0x02 | parity(y) ‖ x: the compressed form the chain signs.
    function _compress(bytes calldata pubkey64) private pure returns (bytes memory) {
        bytes32 x = bytes32(pubkey64[0:32]);
        uint256 y = uint256(bytes32(pubkey64[32:64]));
        return abi.encodePacked(uint8(2 + (y & 1)), x);
    }

    /// @dev Signer of a 65-byte r ‖ s ‖ v signature, or zero when malformed (length, v, zero r/s, high s).
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        if (r == bytes32(0) || s == bytes32(0) || uint256(s) > HALF_N) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
