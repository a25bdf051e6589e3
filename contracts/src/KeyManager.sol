// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IKeyManager} from "./IKeyManager.sol";

/// @title KeyManager
/// @notice The registry of docs/protocol.md#registry-contract. Quotes and encrypted master secrets live in blobs and events; storage keeps
/// only what later calls check: the allow-lists, the master keys of every generation, per request one packed slot
/// plus one hash, and the state of rotation, escrow and recovery (docs/protocol.md#generations).
/// @dev Storage layout (docs/protocol.md#storage-layout). Nodes prove these slots against a verified state root
/// (docs/protocol.md#verified-chain-view), so every value a node checks is a plain slot or a mapping entry; packed fields are
/// listed by byte range from the low-order end. A mapping entry lives at keccak256(key ‖ slot), the key as a 32-byte
/// word (integers and addresses left-padded, bytesN right-padded; a nested mapping applies this twice, outer key
/// first), a struct's later fields in the following slots.
///  0 `_owner`; 1 `_pendingOwner`;
///  2 `_xPub` (0-19) | `_generation` uint64 (20-27) | `_masterPubkeyPrefix` uint8 (28) | `_currentRevoked` (29) |
///    `_proposalPending` (30);
///  3 `_masterPubkeyX`; 4 `_bootstrapQuoteBlobHash`;
///  5 `_requestCount` uint64 (0-7) | `_requestTtl` uint64 (8-15) | `_acceptedTcbStatuses` uint16 (16-17) |
///    `_maxCollateralAge` uint64 (18-25) | `_fmspcAllowlistOn` bool (26) | `_minTcbEvaluationDataNumber` uint32 (27-30);
///  6 `_measurementActivatesAt[id]` uint64; 7 `_fmspcAllowed[fmspc]` bool;
///  8 `_requests[requestId]`: +0 `key` (0-19) | `expiresAt` uint40 (20-24) | `status` uint8 (25) |
///    `generation` uint48 (26-31), +1 `commitment`;
///  9 `_bootstrapper`; 10 `_freshnessMarkedAt[mark]` uint64;
/// 11 `_generations[g]`: +0 `xPub` (0-19) | `retiresAt` uint64 (20-27) | `pubkeyPrefix` (28) | `revoked` (29) |
///    `purged` (30), +1 `pubkeyX`, +2 `quoteBlobHash`, +3 `escrowHash`, +4 `escrowGuardianSet` uint64 (0-7) |
///    `committedAt` uint64 (8-15);
/// 12 `_generationOf[xPub]` uint64;
/// 13 `_memberCount` uint64 (0-7) | `_proposalCount` uint64 (8-15);
/// 14 `_rotation`: `open` (0) | `emergency` (1) | `overlap` uint64 (2-9) | `forceDelay` uint64 (10-17) |
///    `startedAt` uint64 (18-25);
/// 15 `_proposal`: +0 `id` uint64 (0-7) | `generation` uint64 (8-15) | `proposedAt` uint64 (16-23) |
///    `recipients` uint32 (24-27) | `acks` uint32 (28-31), +1 `xPub` (0-19) | `proposerId` uint64 (20-27) |
///    `pubkeyPrefix` (28), +2 `pubkeyX`, +3 `blobHash`;
/// 19 `_acknowledged[proposal][memberId]` bool;
/// 20 `_guardianSetCount` uint64 (0-7) | `_settledGuardianSet` uint64 (8-15) | `_pendingGuardianSet` uint64 (16-23);
/// 21 `_guardianSets[set]`: +0 `pubkeysHash`, +1 `threshold` uint8 (0) | `count` uint8 (1) | `activatesAt` uint64 (2-9);
/// 22 `_guardianIndex[set][guardian]` uint8; 23 `_recoveryRequestId`;
/// 24 `_releasedShares[requestId][generation]` uint256 bit set.
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
    uint8 private constant STATUS_REVOKED = 4;

    uint64 private constant MAX_OVERLAP = 365 days;
    uint64 private constant MAX_FORCE_DELAY = 365 days;
    uint256 private constant MAX_GUARDIANS = 32;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("KeyManager");
    bytes32 private constant VERSION_HASH = keccak256("1");
    bytes32 private constant ATTESTATION_TYPEHASH = keccak256("Attestation(string hostname,bytes32 appData)");
    bytes32 private constant ONBOARD_RESPONSE_TYPEHASH =
        keccak256("OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)");
    bytes32 private constant ONBOARD_RECEIPT_TYPEHASH = keccak256("OnboardReceipt(uint256 requestId,address xPub)");
    bytes32 private constant GENERATION_PROPOSAL_TYPEHASH = keccak256(
        "GenerationProposal(uint64 proposal,uint64 generation,bytes masterPubkey,uint256[] recipientIds,bytes32 proposalBlobHash)"
    );
    bytes32 private constant GENERATION_ACK_TYPEHASH =
        keccak256("GenerationAck(uint64 proposal,uint64 generation,address xPub)");
    bytes32 private constant GUARDIAN_ESCROW_TYPEHASH = keccak256(
        "GuardianEscrow(uint64 generation,uint64 guardianSet,bytes commitments,bytes[] encryptedShares)"
    );
    bytes32 private constant SHARE_RELEASE_TYPEHASH =
        keccak256("ShareRelease(uint256 requestId,uint64 generation,bytes encryptedShare)");

    /// @dev Two slots per request: the packed key/expiry/status/generation (the only slot fulfill and confirm touch)
    /// and the commitment to the quote inputs that helpers compare with the event and the blob. A request id is also
    /// the id of the member it becomes. `expiresAt` is a block number (uint40 lasts 2^40 blocks); `generation` is the
    /// generation the request was last answered under.
    struct Request {
        address key;
        uint40 expiresAt;
        uint8 status;
        uint48 generation;
        bytes32 commitment;
    }

    /// @dev A generation's history record (docs/protocol.md#generations); the current one is mirrored in slots 2-3 for
    /// the verification views.
    struct Generation {
        address xPub;
        uint64 retiresAt;
        uint8 pubkeyPrefix;
        bool revoked;
        bool purged;
        bytes32 pubkeyX;
        bytes32 quoteBlobHash;
        bytes32 escrowHash;
        uint64 escrowGuardianSet;
        uint64 committedAt;
    }

    struct Rotation {
        bool open;
        bool emergency;
        uint64 overlap;
        uint64 forceDelay;
        uint64 startedAt;
    }

    struct Proposal {
        uint64 id;
        uint64 generation;
        uint64 proposedAt;
        uint32 recipients;
        uint32 acks;
        address xPub;
        uint64 proposerId;
        uint8 pubkeyPrefix;
        bytes32 pubkeyX;
        bytes32 blobHash;
    }

    struct GuardianSet {
        bytes32 pubkeysHash;
        uint8 threshold;
        uint8 count;
        uint64 activatesAt;
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
    bool private _currentRevoked;
    bool private _proposalPending;

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

    mapping(uint64 generation => Generation) private _generations;
    mapping(address xPub => uint64 generation) private _generationOf;
    uint64 private _memberCount;
    uint64 private _proposalCount;
    Rotation private _rotation;
    Proposal private _proposal;
    mapping(uint64 proposal => mapping(uint256 memberId => bool)) private _acknowledged;

    uint64 private _guardianSetCount;
    /// @dev The set that was active before `_pendingGuardianSet` (which becomes active by itself at its time).
    uint64 private _settledGuardianSet;
    uint64 private _pendingGuardianSet;
    mapping(uint64 guardianSet => GuardianSet) private _guardianSets;
    mapping(uint64 guardianSet => mapping(address guardian => uint8 index)) private _guardianIndex;
    uint256 private _recoveryRequestId;
    mapping(uint256 requestId => mapping(uint64 generation => uint256 released)) private _releasedShares;

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
        _recordGeneration(1, master, uint8(2 + (y & 1)), bytes32(x), quoteBlobHash);
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
            expiresAt: uint40(block.number + _requestTtl),
            status: STATUS_PENDING,
            generation: 0,
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
        uint64 current = _generation;
        // The pending proposal's recipients are every member at the time; a member that joined after it would
        // receive no share of the next generation (docs/protocol.md#rotation).
        if (_proposalPending) revert KeyManagerProposalPending(_proposal.id);
        if (_currentRevoked) revert KeyManagerGenerationRevoked(current);
        bytes32 responseBlobHash = blobhash(0);
        bytes32 digest = _hashTypedData(
            keccak256(
                abi.encode(ONBOARD_RESPONSE_TYPEHASH, keccak256(abi.encodePacked(requestIds)), responseBlobHash, current)
            )
        );
        if (_recover(digest, signature) != master) revert KeyManagerInvalidSignature();

        for (uint256 i; i < requestIds.length; ++i) {
            uint256 requestId = requestIds[i];
            Request storage request = _requests[requestId];
            uint8 status = request.status;
            if (status != STATUS_PENDING) {
                if (status == STATUS_NONE) revert KeyManagerUnknownRequest(requestId);
                if (status == STATUS_REVOKED) revert KeyManagerNodeRevoked(requestId);
                // An answer under an older generation, not yet confirmed, is answered again with every generation
                // (docs/protocol.md#onboarding-across-generations). A duplicate id in the batch lands on the revert:
                // its first occurrence already set the status and the current generation.
                if (status != STATUS_FULFILLED || request.generation >= current) {
                    revert KeyManagerRequestAlreadyFulfilled(requestId);
                }
            }
            uint64 expiresAt = request.expiresAt;
            if (block.number > expiresAt) revert KeyManagerRequestExpired(requestId, expiresAt);
            request.status = STATUS_FULFILLED;
            request.generation = uint48(current);
            emit Onboarded(requestId, responseBlobHash, i);
        }
    }

    /// @inheritdoc IKeyManager
    function confirmOnboard(uint256 requestId, bytes calldata signature) external {
        Request storage request = _requests[requestId];
        uint8 status = request.status;
        uint64 current = _generation;
        uint256 recoveryRequestId = _recoveryRequestId;
        if (status == STATUS_NONE) revert KeyManagerUnknownRequest(requestId);
        // The open recovery's request holds secrets released by guardians, not a fulfilment.
        if (status == STATUS_PENDING && requestId != recoveryRequestId) revert KeyManagerRequestNotFulfilled(requestId);
        if (status == STATUS_CONFIRMED) revert KeyManagerRequestAlreadyConfirmed(requestId);
        if (status == STATUS_REVOKED) revert KeyManagerNodeRevoked(requestId);
        if (status == STATUS_FULFILLED && request.generation != current) {
            revert KeyManagerStaleResponse(requestId, request.generation, current);
        }
        if (_proposalPending) revert KeyManagerProposalPending(_proposal.id);
        bytes32 digest = _hashTypedData(keccak256(abi.encode(ONBOARD_RECEIPT_TYPEHASH, requestId, _xPub)));
        if (_recover(digest, signature) != request.key) revert KeyManagerInvalidSignature();
        request.status = STATUS_CONFIRMED;
        request.generation = uint48(current);
        ++_memberCount;
        if (requestId == recoveryRequestId) {
            delete _recoveryRequestId;
            emit RecoveryEnded(requestId, true);
        }
        emit OnboardConfirmed(requestId);
    }

    // ---------------------------------------------------------------- members and revocation

    /// @inheritdoc IKeyManager
    function memberCount() external view returns (uint256) {
        return _memberCount;
    }

    /// @inheritdoc IKeyManager
    function requestGeneration(uint256 requestId) external view returns (uint64) {
        return _requests[requestId].generation;
    }

    /// @inheritdoc IKeyManager
    function revokeNode(uint256 memberId) external onlyOwner {
        Request storage request = _requests[memberId];
        uint8 status = request.status;
        if (status == STATUS_NONE) revert KeyManagerUnknownRequest(memberId);
        if (status == STATUS_REVOKED) revert KeyManagerNodeRevoked(memberId);
        if (status == STATUS_CONFIRMED) {
            --_memberCount;
            // Every member is a recipient of the pending proposal: its blob holds this node's share.
            if (_proposalPending) _dropProposal();
        }
        if (_recoveryRequestId == memberId) {
            delete _recoveryRequestId;
            emit RecoveryEnded(memberId, false);
        }
        request.status = STATUS_REVOKED;
        emit NodeRevoked(memberId, request.key);
    }

    // ---------------------------------------------------------------- generations and rotation

    /// @inheritdoc IKeyManager
    function generationInfo(uint64 generation_) external view returns (GenerationInfo memory info) {
        if (generation_ == 0 || generation_ > _generation) return info;
        Generation storage record = _generations[generation_];
        info.xPub = record.xPub;
        info.masterPubkey = abi.encodePacked(record.pubkeyPrefix, record.pubkeyX);
        info.committedAt = record.committedAt;
        info.retiresAt = record.retiresAt;
        info.revoked = record.revoked;
        info.purged = record.purged;
        info.quoteBlobHash = record.quoteBlobHash;
        info.escrowGuardianSet = record.escrowGuardianSet;
        info.escrowHash = record.escrowHash;
    }

    /// @inheritdoc IKeyManager
    function generationOf(address masterAddress) external view returns (uint64) {
        return _generationOf[masterAddress];
    }

    /// @inheritdoc IKeyManager
    function isGenerationValid(uint64 generation_) external view returns (bool) {
        uint64 current = _generation;
        if (generation_ == 0 || generation_ > current) return false;
        if (generation_ == current) return !_currentRevoked;
        return _olderGenerationVerifies(_generations[generation_]);
    }

    /// @inheritdoc IKeyManager
    function startRotation(bool emergency, uint64 overlap, uint64 forceDelay) external onlyOwner {
        uint64 current = _generation;
        if (current == 0) revert KeyManagerNotBootstrapped();
        if (_rotation.open) revert KeyManagerRotationInProgress();
        if (overlap > MAX_OVERLAP || (emergency && overlap != 0)) revert KeyManagerInvalidOverlap(overlap);
        if (forceDelay > MAX_FORCE_DELAY) revert KeyManagerInvalidForceDelay(forceDelay);
        _rotation = Rotation({
            open: true, emergency: emergency, overlap: overlap, forceDelay: forceDelay, startedAt: uint64(block.timestamp)
        });
        emit RotationStarted(current + 1, emergency, overlap, forceDelay);
    }

    /// @inheritdoc IKeyManager
    function cancelRotation() external onlyOwner {
        if (!_rotation.open) revert KeyManagerRotationNotOpen();
        if (_proposalPending) _dropProposal();
        delete _rotation;
        emit RotationCancelled(_generation + 1);
    }

    /// @inheritdoc IKeyManager
    function rotation() external view returns (RotationInfo memory) {
        Rotation memory r = _rotation;
        return RotationInfo({
            open: r.open, emergency: r.emergency, overlap: r.overlap, forceDelay: r.forceDelay, startedAt: r.startedAt
        });
    }

    /// @inheritdoc IKeyManager
    function proposal() external view returns (ProposalInfo memory info) {
        Proposal memory p = _proposal;
        if (p.id == 0) return info;
        info.id = p.id;
        info.generation = p.generation;
        info.proposedAt = p.proposedAt;
        info.recipients = p.recipients;
        info.acks = p.acks;
        info.quorum = _quorum(p.recipients);
        info.proposerId = p.proposerId;
        info.xPub = p.xPub;
        info.masterPubkey = abi.encodePacked(p.pubkeyPrefix, p.pubkeyX);
        info.proposalBlobHash = p.blobHash;
    }

    /// @inheritdoc IKeyManager
    function proposalCount() external view returns (uint64) {
        return _proposalCount;
    }

    /// @inheritdoc IKeyManager
    function hasAcknowledged(uint64 proposalId, uint256 memberId) external view returns (bool) {
        return _acknowledged[proposalId][memberId];
    }

    /// @inheritdoc IKeyManager
    function proposeGeneration(
        uint64 generation_,
        uint256 proposerId,
        bytes calldata masterPubkey64,
        uint256[] calldata recipientIds,
        bytes calldata signature
    ) external blobRequired returns (uint64 proposalId) {
        if (!_rotation.open) revert KeyManagerRotationNotOpen();
        uint64 next = _generation + 1;
        if (generation_ != next) revert KeyManagerWrongGeneration(generation_, next);
        _requirePoint(masterPubkey64);
        address newXPub = address(uint160(uint256(keccak256(masterPubkey64))));
        if (_generationOf[newXPub] != 0) revert KeyManagerMasterKeyReused(newXPub);
        address proposerKey = _memberKey(proposerId);
        _requireEveryMember(recipientIds);
        proposalId = _proposalCount + 1;
        bytes32 structHash = keccak256(
            abi.encode(
                GENERATION_PROPOSAL_TYPEHASH,
                proposalId,
                next,
                keccak256(masterPubkey64),
                keccak256(abi.encodePacked(recipientIds)),
                blobhash(0)
            )
        );
        if (_recover(_hashTypedData(structHash), signature) != proposerKey) revert KeyManagerInvalidSignature();
        _recordProposal(proposalId, proposerId, masterPubkey64, recipientIds);
    }

    /// @inheritdoc IKeyManager
    function acknowledgeGeneration(uint64 proposalId, uint256 memberId, bytes calldata signature) external {
        Proposal storage p = _pendingProposal(proposalId);
        // Onboarding waits while a proposal is pending, so every active member now was one of its recipients.
        address key = _memberKey(memberId);
        if (_acknowledged[proposalId][memberId]) revert KeyManagerAlreadyAcknowledged(proposalId, memberId);
        bytes32 digest =
            _hashTypedData(keccak256(abi.encode(GENERATION_ACK_TYPEHASH, proposalId, p.generation, p.xPub)));
        if (_recover(digest, signature) != key) revert KeyManagerInvalidSignature();
        _acknowledged[proposalId][memberId] = true;
        uint32 acks = p.acks + 1;
        p.acks = acks;
        emit GenerationAcknowledged(proposalId, memberId, acks);
    }

    /// @inheritdoc IKeyManager
    function commitGeneration(uint64 proposalId) external {
        Proposal storage p = _pendingProposal(proposalId);
        uint32 quorum = _quorum(p.recipients);
        if (p.acks < quorum) revert KeyManagerQuorumNotReached(p.acks, quorum);
        _commit(p, false);
    }

    /// @inheritdoc IKeyManager
    function forceCommitGeneration(uint64 proposalId) external onlyOwner {
        Proposal storage p = _pendingProposal(proposalId);
        uint64 forceAt = p.proposedAt + _rotation.forceDelay;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < forceAt) revert KeyManagerForceTooEarly(forceAt);
        _commit(p, true);
    }

    /// @inheritdoc IKeyManager
    function revokeGeneration(uint64 generation_) external onlyOwner {
        uint64 current = _generation;
        if (generation_ == 0 || generation_ > current) revert KeyManagerUnknownGeneration(generation_);
        Generation storage record = _generations[generation_];
        if (record.revoked) revert KeyManagerGenerationRevoked(generation_);
        record.revoked = true;
        if (generation_ == current) _currentRevoked = true;
        emit GenerationRevoked(generation_);
    }

    /// @inheritdoc IKeyManager
    function purgeGeneration(uint64 generation_) external onlyOwner {
        uint64 current = _generation;
        if (generation_ == 0 || generation_ > current) revert KeyManagerUnknownGeneration(generation_);
        Generation storage record = _generations[generation_];
        if (record.purged) revert KeyManagerGenerationPurged(generation_);
        if (generation_ == current || _olderGenerationVerifies(record)) revert KeyManagerGenerationNotRetired(generation_);
        record.purged = true;
        emit GenerationPurged(generation_);
    }

    // ---------------------------------------------------------------- guardians and recovery

    /// @inheritdoc IKeyManager
    function setGuardians(bytes calldata pubkeys, uint8 threshold) external onlyOwner returns (uint64 guardianSet) {
        uint256 count = pubkeys.length / 64;
        if (
            pubkeys.length % 64 != 0 || count > MAX_GUARDIANS || threshold > count || (count != 0 && threshold < 2)
        ) revert KeyManagerInvalidGuardians(pubkeys.length, threshold);
        // The set proposed before becomes the settled one if its time has come; otherwise the new one replaces it.
        uint64 pending = _pendingGuardianSet;
        // forge-lint: disable-next-line(block-timestamp)
        if (pending != 0 && _guardianSets[pending].activatesAt <= block.timestamp) _settledGuardianSet = pending;
        guardianSet = _guardianSetCount + 1;
        _guardianSetCount = guardianSet;
        for (uint256 i; i < count; ++i) {
            bytes calldata key = pubkeys[i * 64:(i + 1) * 64];
            _requirePoint(key);
            address guardian = address(uint160(uint256(keccak256(key))));
            if (_guardianIndex[guardianSet][guardian] != 0) revert KeyManagerDuplicateGuardian(guardian);
            _guardianIndex[guardianSet][guardian] = uint8(i + 1);
        }
        uint64 activatesAt = uint64(block.timestamp) + measurementDelay;
        _guardianSets[guardianSet] = GuardianSet({
            pubkeysHash: keccak256(pubkeys), threshold: threshold, count: uint8(count), activatesAt: activatesAt
        });
        _pendingGuardianSet = guardianSet;
        emit GuardiansProposed(guardianSet, threshold, activatesAt, pubkeys);
    }

    /// @inheritdoc IKeyManager
    function activeGuardianSet() public view returns (uint64 guardianSet) {
        uint64 pending = _pendingGuardianSet;
        // forge-lint: disable-next-line(block-timestamp)
        if (pending != 0 && _guardianSets[pending].activatesAt <= block.timestamp) return pending;
        return _settledGuardianSet;
    }

    /// @inheritdoc IKeyManager
    function pendingGuardianSet() external view returns (uint64 guardianSet) {
        uint64 pending = _pendingGuardianSet;
        // forge-lint: disable-next-line(block-timestamp)
        if (pending != 0 && _guardianSets[pending].activatesAt > block.timestamp) return pending;
        return 0;
    }

    /// @inheritdoc IKeyManager
    function guardianSetInfo(uint64 guardianSet)
        external
        view
        returns (bytes32 pubkeysHash, uint8 threshold, uint8 count, uint64 activatesAt)
    {
        GuardianSet storage set = _guardianSets[guardianSet];
        return (set.pubkeysHash, set.threshold, set.count, set.activatesAt);
    }

    /// @inheritdoc IKeyManager
    function guardianIndex(uint64 guardianSet, address guardian) external view returns (uint8 index) {
        return _guardianIndex[guardianSet][guardian];
    }

    /// @inheritdoc IKeyManager
    function publishEscrow(
        uint64 generation_,
        uint64 guardianSet,
        bytes calldata commitments,
        bytes[] calldata encryptedShares,
        bytes calldata signature
    ) external {
        if (generation_ == 0 || generation_ > _generation) revert KeyManagerUnknownGeneration(generation_);
        Generation storage record = _generations[generation_];
        if (record.revoked) revert KeyManagerGenerationRevoked(generation_);
        if (record.purged) revert KeyManagerGenerationPurged(generation_);
        GuardianSet storage set = _guardianSets[guardianSet];
        if (guardianSet != activeGuardianSet() || set.count == 0) revert KeyManagerGuardianSetNotActive(guardianSet);
        // One escrow per generation and set: a second (two nodes publishing at once) would replace the first, whose
        // shares the guardians may already have checked (docs/protocol.md#guardians).
        if (record.escrowGuardianSet == guardianSet) revert KeyManagerAlreadyEscrowed(generation_, guardianSet);
        // Feldman commitments C_0..C_{k-1} with C_0 = M·G: the constant term is the generation's master key.
        if (
            commitments.length != 33 * uint256(set.threshold) || encryptedShares.length != set.count
                || uint8(commitments[0]) != record.pubkeyPrefix || bytes32(commitments[1:33]) != record.pubkeyX
        ) revert KeyManagerEscrowMismatch();
        bytes32 structHash = keccak256(
            abi.encode(
                GUARDIAN_ESCROW_TYPEHASH, generation_, guardianSet, keccak256(commitments), _hashEach(encryptedShares)
            )
        );
        if (_recover(_hashTypedData(structHash), signature) != record.xPub) revert KeyManagerInvalidSignature();
        record.escrowHash = structHash;
        record.escrowGuardianSet = guardianSet;
        emit EscrowPublished(generation_, guardianSet, commitments, encryptedShares);
    }

    /// @inheritdoc IKeyManager
    function startRecovery(uint256 requestId) external onlyOwner {
        if (_generation == 0) revert KeyManagerNotBootstrapped();
        if (_requests[requestId].status != STATUS_PENDING) revert KeyManagerRequestNotPending(requestId);
        uint256 previous = _recoveryRequestId;
        if (previous != 0) emit RecoveryEnded(previous, false);
        _recoveryRequestId = requestId;
        emit RecoveryStarted(requestId);
    }

    /// @inheritdoc IKeyManager
    function cancelRecovery() external onlyOwner {
        uint256 requestId = _recoveryRequestId;
        if (requestId == 0) revert KeyManagerNotRecoveryRequest(0);
        delete _recoveryRequestId;
        emit RecoveryEnded(requestId, false);
    }

    /// @inheritdoc IKeyManager
    function recoveryRequest() external view returns (uint256) {
        return _recoveryRequestId;
    }

    /// @inheritdoc IKeyManager
    function releaseShare(uint256 requestId, uint64 generation_, bytes calldata encryptedShare, bytes calldata signature)
        external
    {
        if (requestId == 0 || requestId != _recoveryRequestId) revert KeyManagerNotRecoveryRequest(requestId);
        if (generation_ == 0 || generation_ > _generation) revert KeyManagerUnknownGeneration(generation_);
        Generation storage record = _generations[generation_];
        if (record.purged) revert KeyManagerGenerationPurged(generation_);
        uint64 guardianSet = record.escrowGuardianSet;
        if (guardianSet == 0) revert KeyManagerNoEscrow(generation_);
        bytes32 digest = _hashTypedData(
            keccak256(abi.encode(SHARE_RELEASE_TYPEHASH, requestId, generation_, keccak256(encryptedShare)))
        );
        address guardian = _recover(digest, signature);
        uint8 index = _guardianIndex[guardianSet][guardian];
        if (index == 0) revert KeyManagerNotGuardian(guardian);
        uint256 released = _releasedShares[requestId][generation_];
        uint256 bit = 1 << index;
        if (released & bit != 0) revert KeyManagerShareAlreadyReleased(requestId, generation_, index);
        _releasedShares[requestId][generation_] = released | bit;
        emit ShareReleased(requestId, generation_, index, guardian, encryptedShare);
    }

    /// @inheritdoc IKeyManager
    function releasedShares(uint256 requestId, uint64 generation_) external view returns (uint256) {
        return _releasedShares[requestId][generation_];
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
        (address master, bool revoked) = _currentMaster();
        if (master == address(0)) return false;
        bytes32 digest = _hashTypedData(keccak256(abi.encode(ATTESTATION_TYPEHASH, keccak256(bytes(hostname)), appData)));
        return _verifies(_recover(digest, signature), master, revoked);
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
        (address master, bool revoked) = _currentMaster();
        if (master == address(0)) return false;
        if (!_appSignatureValid(derivedPubkey33, appPubkey33, appSignature, purpose)) return false;
        bytes32 kmsDigest = keccak256(abi.encodePacked("dstack-kms-issued:", appId, appPubkey33));
        return _verifies(_recover(kmsDigest, kmsSignature), master, revoked);
    }

    // ---------------------------------------------------------------- internals

    /// @dev The current master address and whether it is revoked, from one read of slot 2.
    function _currentMaster() private view returns (address master, bool revoked) {
        assembly ("memory-safe") {
            let word := sload(_xPub.slot)
            master := and(word, 0xffffffffffffffffffffffffffffffffffffffff)
            revoked := and(shr(232, word), 0xff) // `_currentRevoked`, byte 29
        }
    }

    /// @dev Whether `signer` is the master key of a generation that verifies now. The current generation is the
    /// slot already read (`master`, `revoked`); an older one costs two more reads, only when the signer is not the
    /// current key.
    function _verifies(address signer, address master, bool revoked) private view returns (bool) {
        if (signer == master) return !revoked;
        uint64 older = _generationOf[signer]; // zero for the zero address a malformed signature recovers to
        return older != 0 && _olderGenerationVerifies(_generations[older]);
    }

    /// @dev A generation other than the current one verifies until revoked or retired.
    function _olderGenerationVerifies(Generation storage record) private view returns (bool) {
        // forge-lint: disable-next-line(block-timestamp)
        return !record.revoked && block.timestamp < record.retiresAt;
    }

    function _recordGeneration(uint64 generation_, address master, uint8 prefix, bytes32 x, bytes32 quoteBlobHash)
        private
    {
        Generation storage record = _generations[generation_];
        record.xPub = master;
        record.pubkeyPrefix = prefix;
        record.pubkeyX = x;
        record.quoteBlobHash = quoteBlobHash;
        record.committedAt = uint64(block.timestamp);
        _generationOf[master] = generation_;
    }

    /// @dev Key of an active member; reverts for a revoked node and for any other non-member.
    function _memberKey(uint256 memberId) private view returns (address) {
        Request storage request = _requests[memberId];
        uint8 status = request.status;
        if (status == STATUS_REVOKED) revert KeyManagerNodeRevoked(memberId);
        if (status != STATUS_CONFIRMED) revert KeyManagerNotMember(memberId);
        return request.key;
    }

    /// @dev `ids` must be exactly the active members: as many as `_memberCount`, strictly ascending, each a member.
    function _requireEveryMember(uint256[] calldata ids) private view {
        uint256 members = _memberCount;
        if (ids.length != members) revert KeyManagerInvalidRecipients(ids.length, members);
        uint256 previous;
        for (uint256 i; i < ids.length; ++i) {
            uint256 id = ids[i];
            if (id <= previous) revert KeyManagerInvalidRecipients(ids.length, members);
            _memberKey(id);
            previous = id;
        }
    }

    /// @dev A strict majority of the recipients.
    function _quorum(uint32 recipients) private pure returns (uint32) {
        return recipients / 2 + 1;
    }

    function _pendingProposal(uint64 proposalId) private view returns (Proposal storage p) {
        p = _proposal;
        if (proposalId == 0 || p.id != proposalId) revert KeyManagerUnknownProposal(proposalId);
    }

    /// @dev Replaces a pending proposal with a checked new one; the proposer acknowledges implicitly.
    function _recordProposal(
        uint64 proposalId,
        uint256 proposerId,
        bytes calldata masterPubkey64,
        uint256[] calldata recipientIds
    ) private {
        if (_proposalPending) _dropProposal();
        uint64 next = _generation + 1;
        address newXPub = address(uint160(uint256(keccak256(masterPubkey64))));
        bytes32 blobHash = blobhash(0);
        _proposalCount = proposalId;
        _proposal = Proposal({
            id: proposalId,
            generation: next,
            proposedAt: uint64(block.timestamp),
            recipients: uint32(recipientIds.length),
            acks: 1,
            xPub: newXPub,
            proposerId: uint64(proposerId),
            pubkeyPrefix: uint8(2 + (uint256(bytes32(masterPubkey64[32:64])) & 1)),
            pubkeyX: bytes32(masterPubkey64[0:32]),
            blobHash: blobHash
        });
        _acknowledged[proposalId][proposerId] = true;
        _proposalPending = true;
        emit GenerationProposed(next, proposalId, proposerId, newXPub, masterPubkey64, blobHash, recipientIds);
        emit GenerationAcknowledged(proposalId, proposerId, 1);
    }

    function _dropProposal() private {
        emit GenerationProposalDropped(_proposal.id);
        delete _proposal;
        _proposalPending = false;
    }

    /// @dev Makes the pending proposal current; the outgoing generation retires after the overlap (planned) or is
    /// revoked (emergency); the generation before it, if still in its own overlap, stops verifying now, so that at
    /// most one older generation verifies at a time.
    function _commit(Proposal storage p, bool forced) private {
        Rotation memory r = _rotation;
        uint64 outgoing = _generation;
        uint64 incoming = p.generation;
        uint64 now_ = uint64(block.timestamp);
        Generation storage out = _generations[outgoing];
        if (r.emergency) {
            if (!out.revoked) {
                out.revoked = true;
                emit GenerationRevoked(outgoing);
            }
        } else if (!out.revoked) {
            uint64 retiresAt = now_ + r.overlap;
            out.retiresAt = retiresAt;
            emit GenerationRetirementScheduled(outgoing, retiresAt);
        }
        if (outgoing > 1) {
            Generation storage older = _generations[outgoing - 1];
            if (_olderGenerationVerifies(older)) {
                older.retiresAt = now_;
                emit GenerationRetirementScheduled(outgoing - 1, now_);
            }
        }

        address master = p.xPub;
        uint8 prefix = p.pubkeyPrefix;
        bytes32 x = p.pubkeyX;
        _recordGeneration(incoming, master, prefix, x, p.blobHash);
        _xPub = master;
        _generation = incoming;
        _masterPubkeyPrefix = prefix;
        _currentRevoked = false;
        _proposalPending = false;
        _masterPubkeyX = x;
        uint64 proposalId = p.id;
        uint32 acks = p.acks;
        delete _proposal;
        delete _rotation;
        emit GenerationCommitted(incoming, master, proposalId, acks, forced);
    }

    /// @dev EIP-712 encoding of a `bytes[]` member: keccak256 of the concatenated keccak256 of each element.
    function _hashEach(bytes[] calldata items) private pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](items.length);
        for (uint256 i; i < items.length; ++i) {
            hashes[i] = keccak256(items[i]);
        }
        return keccak256(abi.encodePacked(hashes));
    }

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
