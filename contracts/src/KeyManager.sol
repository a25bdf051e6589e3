// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IKeyManager} from "./IKeyManager.sol";

/// @title KeyManager
/// @notice The registry of docs/protocol.md#registry-contract. Quotes and encrypted master secrets live in blobs and events; storage keeps
/// only what later calls check: the allow-lists, the master key, and per request one packed slot plus one hash.
/// @dev Storage layout (docs/protocol.md#registry-contract "Storage layout"). Nodes prove these slots against a verified state root
/// (docs/protocol.md#verified-chain-view), so every value a node checks is a plain slot or a mapping entry; packed fields are
/// listed from the low-order end. A mapping entry lives at keccak256(key ‖ slot), the key left-padded to 32 bytes
/// (bytes6 keys right-padded, as bytesN are), a struct's later fields in the following slots.
///  0 `_owner`; 1 `_pendingOwner`;
///  2 `_xPub` (bytes 0-19) | `_generation` uint64 (20-27) | `_masterPubkeyPrefix` uint8 (28);
///  3 `_masterPubkeyX`; 4 `_bootstrapQuoteBlobHash`;
///  5 `_requestCount` uint64 (0-7) | `_requestTtl` uint64 (8-15) | `_acceptedTcbStatuses` uint16 (16-17) |
///    `_maxCollateralAge` uint64 (18-25) | `_fmspcAllowlistOn` bool (26) | `_minTcbEvaluationDataNumber` uint32 (27-30);
///  6 `_measurementActivatesAt[id]` uint64; 7 `_fmspcAllowed[fmspc]` bool;
///  8 `_requests[requestId]`: +0 `key` (0-19) | `expiresAt` uint64 (20-27) | `status` uint8 (28), +1 `commitment`;
///  9 `_bootstrapper`; 10 `_freshnessMarkedAt[mark]` uint64.
/// contracts/test/StorageLayout.t.sol pins each of these with vm.load.
contract KeyManager is IKeyManager {
    /// @dev secp256k1 field prime; p ≡ 3 (mod 4), so a square root is a single exponentiation by (p + 1) / 4.
    uint256 private constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    uint256 private constant SQRT_EXPONENT = 0x3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFBFFFFF0C;
    /// @dev Half the secp256k1 group order: larger s values are malleable twins and are rejected.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint256 private constant TDX_MEASUREMENT_LENGTH = 1 + 48 * 6 + 8 + 8; // type, MRTD, RTMR0-3, MRCONFIGID, XFAM, TDATTRIBUTES
    uint256 private constant SGX_MEASUREMENT_LENGTH = 1 + 32 + 32 + 2 + 2; // type, MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN
    uint16 private constant TCB_STATUS_MASK = 0x3f; // bits 0..5; Revoked has no bit (docs/protocol.md#registry-contract)
    uint64 private constant MAX_MEASUREMENT_DELAY = 365 days;
    uint64 private constant MAX_REQUEST_TTL = type(uint32).max;

    uint8 private constant STATUS_NONE = 0;
    uint8 private constant STATUS_PENDING = 1;
    uint8 private constant STATUS_FULFILLED = 2;
    uint8 private constant STATUS_CONFIRMED = 3;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("KeyManager");
    bytes32 private constant VERSION_HASH = keccak256("1");
    bytes32 private constant ATTESTATION_TYPEHASH = keccak256("Attestation(string hostname,bytes32 appData)");
    bytes32 private constant ONBOARD_RESPONSE_TYPEHASH =
        keccak256("OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)");
    bytes32 private constant ONBOARD_RECEIPT_TYPEHASH = keccak256("OnboardReceipt(uint256 requestId,address xPub)");

    /// @dev Two slots per request: the packed key/expiry/status (the only slot fulfill and confirm touch) and the
    /// commitment to the quote inputs that helpers compare with the event and the blob.
    struct Request {
        address key;
        uint64 expiresAt;
        uint8 status;
        bytes32 commitment;
    }

    /// @inheritdoc IKeyManager
    uint64 public immutable measurementDelay;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    address private _owner;
    address private _pendingOwner;

    // One slot: read by every verification and by each onboarding call.
    address private _xPub;
    uint64 private _generation;
    uint8 private _masterPubkeyPrefix;

    bytes32 private _masterPubkeyX;
    bytes32 private _bootstrapQuoteBlobHash;

    // One slot: requestOnboard reads the lifetime and bumps the counter with a single SLOAD/SSTORE, and a helper
    // proves the whole TCB policy with one storage proof.
    uint64 private _requestCount;
    uint64 private _requestTtl;
    uint16 private _acceptedTcbStatuses;
    uint64 private _maxCollateralAge;
    bool private _fmspcAllowlistOn;
    uint32 private _minTcbEvaluationDataNumber;

    mapping(bytes32 id => uint64 activatesAt) private _measurementActivatesAt;
    mapping(bytes6 fmspc => bool allowed) private _fmspcAllowed;
    mapping(uint256 requestId => Request) private _requests;

    address private _bootstrapper;
    mapping(bytes32 mark => uint64 blockNumber) private _freshnessMarkedAt;

    modifier onlyOwner() {
        if (msg.sender != _owner) revert KeyManagerUnauthorizedAccount(msg.sender);
        _;
    }

    modifier blobRequired() {
        if (blobhash(0) == bytes32(0)) revert KeyManagerBlobRequired();
        _;
    }

    /// @notice Deploys a registry with default TCB policy (UpToDate only, 30 days, no FMSPC allow-list) and a
    /// request lifetime of 7200 blocks.
    /// @param initialOwner The owner (a multisig in production).
    /// @param initialMeasurementDelay Seconds before an added measurement activates, at most 365 days (0 on devnets).
    constructor(address initialOwner, uint64 initialMeasurementDelay) {
        if (initialOwner == address(0)) revert KeyManagerInvalidOwner(address(0));
        if (initialMeasurementDelay > MAX_MEASUREMENT_DELAY) {
            revert KeyManagerInvalidMeasurementDelay(initialMeasurementDelay);
        }
        measurementDelay = initialMeasurementDelay;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();

        _owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
        _requestTtl = 7200;
        emit RequestTtlChanged(7200);
        _acceptedTcbStatuses = 1;
        _maxCollateralAge = 30 days;
        emit TcbPolicyChanged(1, 30 days, false);
    }

    // ---------------------------------------------------------------- ownership

    /// @inheritdoc IKeyManager
    function owner() external view returns (address) {
        return _owner;
    }

    /// @inheritdoc IKeyManager
    function pendingOwner() external view returns (address) {
        return _pendingOwner;
    }

    /// @inheritdoc IKeyManager
    function transferOwnership(address newOwner) external onlyOwner {
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @inheritdoc IKeyManager
    function acceptOwnership() external {
        if (msg.sender != _pendingOwner) revert KeyManagerUnauthorizedAccount(msg.sender);
        address previousOwner = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previousOwner, msg.sender);
    }

    /// @inheritdoc IKeyManager
    function bootstrapper() external view returns (address) {
        return _bootstrapper;
    }

    /// @inheritdoc IKeyManager
    function setBootstrapper(address newBootstrapper) external onlyOwner {
        emit BootstrapperChanged(_bootstrapper, newBootstrapper);
        _bootstrapper = newBootstrapper;
    }

    // ---------------------------------------------------------------- measurements

    /// @inheritdoc IKeyManager
    function addMeasurement(bytes32 id, bytes calldata raw) external onlyOwner {
        uint8 teeType = raw.length == 0 ? 0 : uint8(raw[0]);
        if (
            !(teeType == 1 && raw.length == TDX_MEASUREMENT_LENGTH)
                && !(teeType == 2 && raw.length == SGX_MEASUREMENT_LENGTH)
        ) revert KeyManagerMalformedMeasurement(teeType, raw.length);
        bytes32 computed = keccak256(raw);
        if (computed != id) revert KeyManagerMeasurementIdMismatch(id, computed);
        if (_measurementActivatesAt[id] != 0) revert KeyManagerMeasurementAlreadyAdded(id);
        uint64 activatesAt = uint64(block.timestamp) + measurementDelay;
        _measurementActivatesAt[id] = activatesAt;
        emit MeasurementAdded(id, activatesAt, raw);
    }

    /// @inheritdoc IKeyManager
    function removeMeasurement(bytes32 id) external onlyOwner {
        if (_measurementActivatesAt[id] == 0) revert KeyManagerUnknownMeasurement(id);
        delete _measurementActivatesAt[id];
        emit MeasurementRemoved(id);
    }

    /// @inheritdoc IKeyManager
    function isMeasurementAllowed(bytes32 id) external view returns (bool) {
        uint64 activatesAt = _measurementActivatesAt[id];
        // A delay of seconds to days is what is measured; validators' few seconds of leeway do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        return activatesAt != 0 && block.timestamp >= activatesAt;
    }

    /// @inheritdoc IKeyManager
    function measurementActivatesAt(bytes32 id) external view returns (uint64) {
        return _measurementActivatesAt[id];
    }

    // ---------------------------------------------------------------- TCB policy

    /// @inheritdoc IKeyManager
    function setTcbPolicy(uint16 acceptedStatuses, uint64 maxCollateralAge, bool fmspcAllowlistOn) external onlyOwner {
        if (acceptedStatuses == 0 || acceptedStatuses & ~TCB_STATUS_MASK != 0) {
            revert KeyManagerInvalidTcbStatuses(acceptedStatuses);
        }
        if (maxCollateralAge == 0) revert KeyManagerInvalidCollateralAge();
        _acceptedTcbStatuses = acceptedStatuses;
        _maxCollateralAge = maxCollateralAge;
        _fmspcAllowlistOn = fmspcAllowlistOn;
        emit TcbPolicyChanged(acceptedStatuses, maxCollateralAge, fmspcAllowlistOn);
    }

    /// @inheritdoc IKeyManager
    function tcbPolicy() external view returns (uint16 acceptedStatuses, uint64 maxCollateralAge, bool fmspcAllowlistOn) {
        return (_acceptedTcbStatuses, _maxCollateralAge, _fmspcAllowlistOn);
    }

    /// @inheritdoc IKeyManager
    function setMinTcbEvaluationDataNumber(uint32 newMinimum) external onlyOwner {
        _minTcbEvaluationDataNumber = newMinimum;
        emit MinTcbEvaluationDataNumberChanged(newMinimum);
    }

    /// @inheritdoc IKeyManager
    function minTcbEvaluationDataNumber() external view returns (uint32) {
        return _minTcbEvaluationDataNumber;
    }

    /// @inheritdoc IKeyManager
    function setFmspc(bytes6 fmspc, bool allowed) external onlyOwner {
        _fmspcAllowed[fmspc] = allowed;
        emit FmspcSet(fmspc, allowed);
    }

    /// @inheritdoc IKeyManager
    function isFmspcAllowed(bytes6 fmspc) external view returns (bool) {
        return !_fmspcAllowlistOn || _fmspcAllowed[fmspc];
    }

    // ---------------------------------------------------------------- master key

    /// @inheritdoc IKeyManager
    function bootstrap(bytes calldata pubkey64) external blobRequired {
        if (msg.sender != _owner && msg.sender != _bootstrapper) revert KeyManagerUnauthorizedAccount(msg.sender);
        if (_generation != 0) revert KeyManagerAlreadyBootstrapped();
        (uint256 x, uint256 y) = _requirePoint(pubkey64);
        address master = address(uint160(uint256(keccak256(pubkey64))));
        bytes32 quoteBlobHash = blobhash(0);
        _xPub = master;
        _generation = 1;
        _masterPubkeyPrefix = uint8(2 + (y & 1));
        _masterPubkeyX = bytes32(x);
        _bootstrapQuoteBlobHash = quoteBlobHash;
        emit Bootstrapped(master, pubkey64, quoteBlobHash, 1);
    }

    /// @inheritdoc IKeyManager
    function masterPubkey() external view returns (bytes memory) {
        if (_generation == 0) return "";
        return abi.encodePacked(_masterPubkeyPrefix, _masterPubkeyX);
    }

    /// @inheritdoc IKeyManager
    function xPub() external view returns (address) {
        return _xPub;
    }

    /// @inheritdoc IKeyManager
    function generation() external view returns (uint64) {
        return _generation;
    }

    /// @inheritdoc IKeyManager
    function bootstrapQuoteBlobHash() external view returns (bytes32) {
        return _bootstrapQuoteBlobHash;
    }

    // ---------------------------------------------------------------- onboarding

    /// @inheritdoc IKeyManager
    function requestTtl() external view returns (uint64) {
        return _requestTtl;
    }

    /// @inheritdoc IKeyManager
    function setRequestTtl(uint64 newRequestTtl) external onlyOwner {
        if (newRequestTtl == 0 || newRequestTtl > MAX_REQUEST_TTL) revert KeyManagerInvalidRequestTtl(newRequestTtl);
        _requestTtl = newRequestTtl;
        emit RequestTtlChanged(newRequestTtl);
    }

    /// @inheritdoc IKeyManager
    function requestOnboard(bytes calldata pubkey64, uint64 refBlockNumber)
        external
        blobRequired
        returns (uint256 requestId)
    {
        if (_generation == 0) revert KeyManagerNotBootstrapped();
        _requirePoint(pubkey64);
        // Written as an addition so that low block numbers cannot underflow (docs/protocol.md#report-data freshness window).
        if (refBlockNumber >= block.number || uint256(refBlockNumber) + 256 < block.number) {
            revert KeyManagerInvalidRefBlock(refBlockNumber, block.number);
        }
        bytes32 refBlockHash = blockhash(refBlockNumber);
        if (refBlockHash == bytes32(0)) revert KeyManagerRefBlockHashUnavailable(refBlockNumber);

        bytes32 pubkeyHash = keccak256(pubkey64);
        address key = address(uint160(uint256(pubkeyHash)));
        bytes32 quoteBlobHash = blobhash(0);
        uint64 count = _requestCount + 1;
        _requestCount = count;
        requestId = count;
        _requests[requestId] = Request({
            key: key,
            expiresAt: uint64(block.number) + _requestTtl,
            status: STATUS_PENDING,
            commitment: keccak256(abi.encode(pubkeyHash, quoteBlobHash, refBlockNumber, refBlockHash))
        });
        emit OnboardRequested(requestId, key, pubkey64, quoteBlobHash, refBlockNumber, refBlockHash);
    }

    /// @inheritdoc IKeyManager
    function requestCount() external view returns (uint256) {
        return _requestCount;
    }

    /// @inheritdoc IKeyManager
    function getRequest(uint256 requestId)
        external
        view
        returns (address key, uint64 expiresAt, uint8 status, bytes32 commitment)
    {
        Request storage request = _requests[requestId];
        return (request.key, request.expiresAt, request.status, request.commitment);
    }

    /// @inheritdoc IKeyManager
    function fulfillOnboard(uint256[] calldata requestIds, bytes calldata signature) external blobRequired {
        if (requestIds.length == 0) revert KeyManagerEmptyBatch();
        address master = _xPub;
        if (master == address(0)) revert KeyManagerNotBootstrapped();
        bytes32 responseBlobHash = blobhash(0);
        bytes32 digest = _hashTypedData(
            keccak256(
                abi.encode(
                    ONBOARD_RESPONSE_TYPEHASH, keccak256(abi.encodePacked(requestIds)), responseBlobHash, _generation
                )
            )
        );
        if (_recover(digest, signature) != master) revert KeyManagerInvalidSignature();

        for (uint256 i; i < requestIds.length; ++i) {
            uint256 requestId = requestIds[i];
            Request storage request = _requests[requestId];
            uint8 status = request.status;
            if (status == STATUS_NONE) revert KeyManagerUnknownRequest(requestId);
            // A duplicate id in the batch lands here too: its first occurrence already set the status.
            if (status != STATUS_PENDING) revert KeyManagerRequestAlreadyFulfilled(requestId);
            uint64 expiresAt = request.expiresAt;
            if (block.number > expiresAt) revert KeyManagerRequestExpired(requestId, expiresAt);
            request.status = STATUS_FULFILLED;
            emit Onboarded(requestId, responseBlobHash, i);
        }
    }

    /// @inheritdoc IKeyManager
    function confirmOnboard(uint256 requestId, bytes calldata signature) external {
        Request storage request = _requests[requestId];
        uint8 status = request.status;
        if (status == STATUS_NONE) revert KeyManagerUnknownRequest(requestId);
        if (status == STATUS_PENDING) revert KeyManagerRequestNotFulfilled(requestId);
        if (status == STATUS_CONFIRMED) revert KeyManagerRequestAlreadyConfirmed(requestId);
        bytes32 digest = _hashTypedData(keccak256(abi.encode(ONBOARD_RECEIPT_TYPEHASH, requestId, _xPub)));
        if (_recover(digest, signature) != request.key) revert KeyManagerInvalidSignature();
        request.status = STATUS_CONFIRMED;
        emit OnboardConfirmed(requestId);
    }

    // ---------------------------------------------------------------- freshness

    /// @inheritdoc IKeyManager
    function markFresh(bytes32 mark) external returns (uint64 blockNumber) {
        blockNumber = _freshnessMarkedAt[mark];
        if (blockNumber != 0) return blockNumber;
        blockNumber = uint64(block.number);
        _freshnessMarkedAt[mark] = blockNumber;
        emit FreshnessMarked(mark, msg.sender);
    }

    /// @inheritdoc IKeyManager
    function freshnessMarkedAt(bytes32 mark) external view returns (uint64 blockNumber) {
        return _freshnessMarkedAt[mark];
    }

    // ---------------------------------------------------------------- EIP-712 and verification

    /// @inheritdoc IKeyManager
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator();
    }

    /// @inheritdoc IKeyManager
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", "KeyManager", "1", block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @inheritdoc IKeyManager
    function verifyAttestation(string calldata hostname, bytes32 appData, bytes calldata signature)
        external
        view
        returns (bool)
    {
        address master = _xPub;
        if (master == address(0)) return false;
        bytes32 digest = _hashTypedData(keccak256(abi.encode(ATTESTATION_TYPEHASH, keccak256(bytes(hostname)), appData)));
        return _recover(digest, signature) == master;
    }

    /// @inheritdoc IKeyManager
    function verifySignatureChain(
        bytes20 appId,
        bytes calldata derivedPubkey33,
        bytes calldata appPubkey33,
        bytes calldata appSignature,
        bytes calldata kmsSignature,
        string calldata purpose
    ) external view returns (bool) {
        address master = _xPub;
        if (master == address(0)) return false;
        if (!_appSignatureValid(derivedPubkey33, appPubkey33, appSignature, purpose)) return false;
        bytes32 kmsDigest = keccak256(abi.encodePacked("dstack-kms-issued:", appId, appPubkey33));
        return _recover(kmsDigest, kmsSignature) == master;
    }

    // ---------------------------------------------------------------- internals

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// @dev The cached separator is only valid on the chain the contract was deployed on (e.g. not after a fork).
    function _domainSeparator() private view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", _domainSeparator(), structHash));
    }

    /// @dev Signer of a 65-byte r ‖ s ‖ v signature, or zero when it is malformed: wrong length, v not in
    /// {0, 1, 27, 28}, r or s zero, or s above n/2. Never reverts.
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

    /// @dev Coordinates of a 64-byte uncompressed key; reverts unless it is a point on secp256k1.
    function _requirePoint(bytes calldata pubkey64) private pure returns (uint256 x, uint256 y) {
        if (pubkey64.length != 64) revert KeyManagerInvalidPubkeyLength(pubkey64.length);
        x = uint256(bytes32(pubkey64[0:32]));
        y = uint256(bytes32(pubkey64[32:64]));
        if (x >= P || y >= P || mulmod(y, y, P) != addmod(mulmod(mulmod(x, x, P), x, P), 7, P)) {
            revert KeyManagerPubkeyNotOnCurve();
        }
    }

    /// @dev First link of the dstack chain: the app key (appPubkey33) signed
    /// keccak256(purpose ‖ ":" ‖ lowercase hex of derivedPubkey33). Both keys must be valid compressed points.
    function _appSignatureValid(
        bytes calldata derivedPubkey33,
        bytes calldata appPubkey33,
        bytes calldata appSignature,
        string calldata purpose
    ) private view returns (bool) {
        (bool appKeyValid, address appAddress) = _compressedKeyAddress(appPubkey33);
        if (!appKeyValid) return false;
        (bool derivedKeyValid,) = _compressedKeyAddress(derivedPubkey33);
        if (!derivedKeyValid) return false;
        bytes32 digest = keccak256(abi.encodePacked(purpose, ":", _lowercaseHex(derivedPubkey33)));
        return _recover(digest, appSignature) == appAddress;
    }

    /// @dev Decompresses a 33-byte SEC1 key and returns its Ethereum address; (false, 0) when the length or prefix
    /// is wrong, x ≥ p, or x is not the abscissa of a curve point. Never reverts.
    function _compressedKeyAddress(bytes calldata key) private view returns (bool valid, address keyAddress) {
        if (key.length != 33) return (false, address(0));
        uint8 prefix = uint8(key[0]);
        if (prefix != 2 && prefix != 3) return (false, address(0));
        uint256 x = uint256(bytes32(key[1:33]));
        if (x >= P) return (false, address(0));
        uint256 ySquared = addmod(mulmod(mulmod(x, x, P), x, P), 7, P);
        (bool success, uint256 y) = _modexp(ySquared, SQRT_EXPONENT);
        if (!success || mulmod(y, y, P) != ySquared) return (false, address(0));
        // y is never 0 on secp256k1 (no point of order 2), so P - y stays in range.
        if (y & 1 != prefix & 1) y = P - y;
        return (true, address(uint160(uint256(keccak256(abi.encodePacked(x, y))))));
    }

    /// @dev base^exponent mod P through the modexp precompile (EIP-198) at address 0x05.
    function _modexp(uint256 base, uint256 exponent) private view returns (bool success, uint256 result) {
        assembly ("memory-safe") {
            let input := mload(0x40)
            mstore(input, 0x20)
            mstore(add(input, 0x20), 0x20)
            mstore(add(input, 0x40), 0x20)
            mstore(add(input, 0x60), base)
            mstore(add(input, 0x80), exponent)
            mstore(add(input, 0xa0), P)
            success := staticcall(gas(), 0x05, input, 0xc0, input, 0x20)
            result := mload(input)
        }
    }

    /// @dev Lowercase hex of `data`, without 0x (the dstack signature-chain message, docs/protocol.md#keys-and-derivations).
    function _lowercaseHex(bytes calldata data) private pure returns (bytes memory out) {
        out = new bytes(data.length * 2);
        bytes16 alphabet = "0123456789abcdef";
        assembly ("memory-safe") {
            let dst := add(out, 0x20)
            for { let i := 0 } lt(i, data.length) { i := add(i, 1) } {
                let b := byte(0, calldataload(add(data.offset, i)))
                mstore8(dst, byte(shr(4, b), alphabet))
                mstore8(add(dst, 1), byte(and(b, 0x0f), alphabet))
                dst := add(dst, 2)
            }
        }
    }
}
