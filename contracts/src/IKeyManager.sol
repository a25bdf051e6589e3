// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IKeyManager
/// @notice Registry of a keymanager network (docs/protocol.md#registry-contract): governs which enclave measurements and TCB levels
/// may hold the master secret, publishes the master public key, and carries onboarding requests and responses
/// whose payloads travel as EIP-4844 blobs (only their versioned hashes are seen here).
interface IKeyManager {
    // ---------------------------------------------------------------- events

    /// @notice A two-step ownership transfer was started; `newOwner` must call `acceptOwnership`.
    /// @param previousOwner The current owner.
    /// @param newOwner The pending owner (zero cancels a pending transfer).
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);

    /// @notice Ownership changed (also emitted by the constructor, from the zero address).
    /// @param previousOwner The former owner.
    /// @param newOwner The new owner.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice An enclave measurement was added to the allow-list.
    /// @param id keccak256 of `raw` (docs/protocol.md#measurements-and-tcb-policy).
    /// @param activatesAt Timestamp from which `isMeasurementAllowed(id)` is true.
    /// @param raw The packed preimage: TDX or SGX fields behind a one-byte TEE type.
    event MeasurementAdded(bytes32 indexed id, uint64 activatesAt, bytes raw);

    /// @notice An enclave measurement was removed from the allow-list (effective immediately).
    /// @param id The measurement id.
    event MeasurementRemoved(bytes32 indexed id);

    /// @notice The TCB policy changed (also emitted by the constructor with the defaults).
    /// @param acceptedStatuses Bit set of accepted TCB statuses (bits 0..5, see `setTcbPolicy`).
    /// @param maxCollateralAge Maximum age of DCAP collateral, in seconds.
    /// @param fmspcAllowlistOn Whether only allow-listed FMSPCs are accepted.
    event TcbPolicyChanged(uint16 acceptedStatuses, uint64 maxCollateralAge, bool fmspcAllowlistOn);

    /// @notice An FMSPC was added to or removed from the FMSPC allow-list.
    /// @param fmspc The 6-byte FMSPC of a platform.
    /// @param allowed Whether it is on the allow-list now.
    event FmspcSet(bytes6 indexed fmspc, bool allowed);

    /// @notice The minimum TCB evaluation data number changed.
    /// @param minTcbEvaluationDataNumber The new minimum (0: no minimum).
    event MinTcbEvaluationDataNumberChanged(uint32 minTcbEvaluationDataNumber);

    /// @notice The onboarding request lifetime changed (also emitted by the constructor).
    /// @param requestTtl Blocks a request stays fulfillable after the block it was made in.
    event RequestTtlChanged(uint64 requestTtl);

    /// @notice The owner named the account that may send `bootstrap` in its stead.
    /// @param previousBootstrapper The former bootstrapper (zero when there was none).
    /// @param newBootstrapper The new bootstrapper (zero removes the role).
    event BootstrapperChanged(address indexed previousBootstrapper, address indexed newBootstrapper);

    /// @notice The master key was published.
    /// @param xPub Ethereum address of the master key.
    /// @param masterPubkey The 64-byte uncompressed master public key (no 0x04 prefix).
    /// @param quoteBlobHash Versioned hash of blob 0 of the bootstrap transaction (the bootstrap envelope).
    /// @param generation The new generation (1 after the first bootstrap).
    event Bootstrapped(address indexed xPub, bytes masterPubkey, bytes32 quoteBlobHash, uint64 generation);

    /// @notice A node asked to be onboarded.
    /// @param requestId Sequential id, starting at 1.
    /// @param requester Address of `pubkey64`, the newcomer's ephemeral key.
    /// @param pubkey64 The 64-byte uncompressed ephemeral public key bound into the newcomer's quote.
    /// @param quoteBlobHash Versioned hash of blob 0 of the request transaction (the register envelope).
    /// @param refBlockNumber The recent block the quote's report data commits to.
    /// @param refBlockHash `blockhash(refBlockNumber)` as seen by this contract.
    event OnboardRequested(
        uint256 indexed requestId,
        address indexed requester,
        bytes pubkey64,
        bytes32 quoteBlobHash,
        uint64 refBlockNumber,
        bytes32 refBlockHash
    );

    /// @notice A request was answered with the master secret encrypted to its key.
    /// @param requestId The request.
    /// @param responseBlobHash Versioned hash of blob 0 of the fulfilling transaction (the onboard envelope).
    /// @param index Position of the request in the batch, which is the position of its ciphertext in the envelope.
    event Onboarded(uint256 indexed requestId, bytes32 responseBlobHash, uint256 index);

    /// @notice The newcomer confirmed that it decrypted and sealed the master secret.
    /// @param requestId The request.
    event OnboardConfirmed(uint256 indexed requestId);

    /// @notice A freshness mark was recorded for the first time (docs/protocol.md#verified-chain-view).
    /// @param mark The 32 bytes a node generated for one decision.
    /// @param sender The account that sent it (the node's host, usually).
    event FreshnessMarked(bytes32 indexed mark, address indexed sender);

    // ---------------------------------------------------------------- errors

    /// @notice The caller is not allowed to perform this operation (not the owner, the pending owner or the bootstrapper).
    /// @param account The caller.
    error KeyManagerUnauthorizedAccount(address account);

    /// @notice The constructor was given the zero address as owner.
    /// @param owner The rejected owner.
    error KeyManagerInvalidOwner(address owner);

    /// @notice The constructor was given a measurement delay above 365 days.
    /// @param measurementDelay The rejected delay, in seconds.
    error KeyManagerInvalidMeasurementDelay(uint64 measurementDelay);

    /// @notice `keccak256(raw)` differs from the given measurement id.
    /// @param id The given id.
    /// @param computed keccak256 of the given preimage.
    error KeyManagerMeasurementIdMismatch(bytes32 id, bytes32 computed);

    /// @notice The measurement preimage has an unknown TEE type byte or the wrong length for its type.
    /// @param teeType The first byte of the preimage (0 when it is empty).
    /// @param length The preimage length.
    error KeyManagerMalformedMeasurement(uint8 teeType, uint256 length);

    /// @notice The measurement is already on the allow-list (active or pending).
    /// @param id The measurement id.
    error KeyManagerMeasurementAlreadyAdded(bytes32 id);

    /// @notice The measurement is not on the allow-list.
    /// @param id The measurement id.
    error KeyManagerUnknownMeasurement(bytes32 id);

    /// @notice The accepted TCB statuses are empty or use bits beyond 0..5 (Revoked is never acceptable).
    /// @param acceptedStatuses The rejected bit set.
    error KeyManagerInvalidTcbStatuses(uint16 acceptedStatuses);

    /// @notice The maximum collateral age is zero.
    error KeyManagerInvalidCollateralAge();

    /// @notice The request lifetime is zero or above 2^32 - 1 blocks.
    /// @param requestTtl The rejected lifetime.
    error KeyManagerInvalidRequestTtl(uint64 requestTtl);

    /// @notice The transaction carries no blob (`blobhash(0)` is zero).
    error KeyManagerBlobRequired();

    /// @notice A public key is not 64 bytes long.
    /// @param length The given length.
    error KeyManagerInvalidPubkeyLength(uint256 length);

    /// @notice A public key is not a point on secp256k1 (coordinates must be below p and satisfy y² = x³ + 7).
    error KeyManagerPubkeyNotOnCurve();

    /// @notice The master key is already published for this generation.
    error KeyManagerAlreadyBootstrapped();

    /// @notice No master key is published yet.
    error KeyManagerNotBootstrapped();

    /// @notice The reference block is not one of the 256 blocks before the current one.
    /// @param refBlockNumber The given block number.
    /// @param currentBlock The current block number.
    error KeyManagerInvalidRefBlock(uint64 refBlockNumber, uint256 currentBlock);

    /// @notice The chain returned no hash for the reference block.
    /// @param refBlockNumber The given block number.
    error KeyManagerRefBlockHashUnavailable(uint64 refBlockNumber);

    /// @notice `fulfillOnboard` was called with no request ids.
    error KeyManagerEmptyBatch();

    /// @notice No request has this id.
    /// @param requestId The id.
    error KeyManagerUnknownRequest(uint256 requestId);

    /// @notice The request is past its last fulfillable block.
    /// @param requestId The id.
    /// @param expiresAt The last block in which it could be fulfilled.
    error KeyManagerRequestExpired(uint256 requestId, uint64 expiresAt);

    /// @notice The request was already fulfilled (also raised for a duplicate id within one batch).
    /// @param requestId The id.
    error KeyManagerRequestAlreadyFulfilled(uint256 requestId);

    /// @notice The request is still pending: there is nothing to confirm yet.
    /// @param requestId The id.
    error KeyManagerRequestNotFulfilled(uint256 requestId);

    /// @notice The request was already confirmed.
    /// @param requestId The id.
    error KeyManagerRequestAlreadyConfirmed(uint256 requestId);

    /// @notice The signature is malformed or was not made by the expected key.
    error KeyManagerInvalidSignature();

    // ---------------------------------------------------------------- ownership

    /// @notice The account allowed to govern the allow-lists and to bootstrap.
    /// @return The owner.
    function owner() external view returns (address);

    /// @notice The account that may accept ownership, or zero.
    /// @return The pending owner.
    function pendingOwner() external view returns (address);

    /// @notice Starts a two-step ownership transfer (owner only); the zero address cancels a pending one.
    /// @param newOwner The account that must then call `acceptOwnership`.
    function transferOwnership(address newOwner) external;

    /// @notice Completes a two-step ownership transfer (pending owner only).
    function acceptOwnership() external;

    /// @notice The account that may send `bootstrap` besides the owner (zero when none).
    /// @dev A multisig owner cannot send blob transactions; the bootstrapper is an EOA the owner names for that
    /// transaction (docs/protocol.md#bootstrap).
    /// @return The bootstrapper.
    function bootstrapper() external view returns (address);

    /// @notice Names the bootstrapper (owner only); zero removes the role. Takes effect at once.
    /// @dev Its only power is `bootstrap`, which succeeds once: it chooses the first master key. Name it right before
    /// bootstrap and remove it afterwards.
    /// @param newBootstrapper The account, or zero.
    function setBootstrapper(address newBootstrapper) external;

    // ---------------------------------------------------------------- measurements

    /// @notice Seconds between adding a measurement and it becoming active (fixed at deployment).
    /// @return The delay in seconds.
    function measurementDelay() external view returns (uint64);

    /// @notice Adds an enclave measurement to the allow-list (owner only); it activates after `measurementDelay`.
    /// @param id keccak256(raw).
    /// @param raw Packed preimage (docs/protocol.md#measurements-and-tcb-policy): `uint8(1) ‖ MRTD ‖ RTMR0..3 ‖ MRCONFIGID ‖ XFAM ‖ TDATTRIBUTES`
    /// (305 bytes, TDX) or `uint8(2) ‖ MRENCLAVE ‖ MRSIGNER ‖ ISVPRODID ‖ ISVSVN` (69 bytes, SGX).
    function addMeasurement(bytes32 id, bytes calldata raw) external;

    /// @notice Removes an enclave measurement from the allow-list, effective immediately (owner only).
    /// @param id The measurement id.
    function removeMeasurement(bytes32 id) external;

    /// @notice Whether a measurement is on the allow-list and its activation time has come.
    /// @param id The measurement id.
    /// @return True when nodes with this measurement may be onboarded now.
    function isMeasurementAllowed(bytes32 id) external view returns (bool);

    /// @notice When a listed measurement activates.
    /// @param id The measurement id.
    /// @return The activation timestamp, 0 when the measurement is not listed.
    function measurementActivatesAt(bytes32 id) external view returns (uint64);

    // ---------------------------------------------------------------- TCB policy

    /// @notice Sets the TCB policy helpers enforce off chain (owner only).
    /// @param acceptedStatuses Non-empty bit set: 0 UpToDate, 1 SWHardeningNeeded, 2 ConfigurationNeeded,
    /// 3 ConfigurationAndSWHardeningNeeded, 4 OutOfDate, 5 OutOfDateConfigurationNeeded. Other bits are rejected.
    /// @param maxCollateralAge Maximum age of DCAP collateral in seconds, non-zero.
    /// @param fmspcAllowlistOn Whether only FMSPCs set with `setFmspc` are accepted.
    function setTcbPolicy(uint16 acceptedStatuses, uint64 maxCollateralAge, bool fmspcAllowlistOn) external;

    /// @notice The TCB policy (defaults: UpToDate only, 30 days, allow-list off).
    /// @return acceptedStatuses Bit set of accepted TCB statuses.
    /// @return maxCollateralAge Maximum collateral age in seconds.
    /// @return fmspcAllowlistOn Whether the FMSPC allow-list is enforced.
    function tcbPolicy() external view returns (uint16 acceptedStatuses, uint64 maxCollateralAge, bool fmspcAllowlistOn);

    /// @notice Sets the minimum TCB evaluation data number helpers require of a quote's collateral (owner only).
    /// @dev Kept apart from `setTcbPolicy` so that function keeps its signature. Helpers refuse a quote whose TCB info
    /// or QE identity has a lower `tcbEvaluationDataNumber` (docs/protocol.md#measurements-and-tcb-policy).
    /// @param newMinimum The minimum; 0 means no minimum (the default).
    function setMinTcbEvaluationDataNumber(uint32 newMinimum) external;

    /// @notice The minimum TCB evaluation data number (0: no minimum).
    /// @return The minimum.
    function minTcbEvaluationDataNumber() external view returns (uint32);

    /// @notice Adds an FMSPC to or removes it from the allow-list (owner only).
    /// @param fmspc The platform's FMSPC.
    /// @param allowed Whether it is allowed.
    function setFmspc(bytes6 fmspc, bool allowed) external;

    /// @notice Whether a platform's FMSPC is acceptable: always true while the allow-list is off.
    /// @param fmspc The FMSPC.
    /// @return True when acceptable.
    function isFmspcAllowed(bytes6 fmspc) external view returns (bool);

    // ---------------------------------------------------------------- master key

    /// @notice Publishes the master public key (owner or bootstrapper, once); blob 0 must carry the bootstrap envelope.
    /// @param pubkey64 Uncompressed master public key without the 0x04 prefix, on secp256k1.
    function bootstrap(bytes calldata pubkey64) external;

    /// @notice The master public key, SEC1-compressed (33 bytes); empty before bootstrap.
    /// @return The compressed key.
    function masterPubkey() external view returns (bytes memory);

    /// @notice Ethereum address of the master key; zero before bootstrap.
    /// @return The address.
    function xPub() external view returns (address);

    /// @notice Master key generation: 0 before bootstrap, 1 after it.
    /// @return The generation.
    function generation() external view returns (uint64);

    /// @notice Versioned hash of the bootstrap transaction's blob 0 (the envelope with the bootstrap quote).
    /// @return The versioned hash, zero before bootstrap.
    function bootstrapQuoteBlobHash() external view returns (bytes32);

    // ---------------------------------------------------------------- onboarding

    /// @notice Blocks a new request stays fulfillable (default 7200).
    /// @return The lifetime in blocks.
    function requestTtl() external view returns (uint64);

    /// @notice Sets the lifetime of new requests (owner only); existing requests keep theirs.
    /// @param newRequestTtl Lifetime in blocks, 1 to 2^32 - 1.
    function setRequestTtl(uint64 newRequestTtl) external;

    /// @notice Asks to be onboarded; blob 0 must carry the register envelope (quote binding `pubkey64`).
    /// @param pubkey64 The newcomer's ephemeral public key (64 bytes, uncompressed, on secp256k1).
    /// @param refBlockNumber A block with `block.number - 256 <= refBlockNumber < block.number`.
    /// @return requestId The new request's id.
    function requestOnboard(bytes calldata pubkey64, uint64 refBlockNumber) external returns (uint256 requestId);

    /// @notice Number of requests made so far, which is also the id of the latest one.
    /// @return The count.
    function requestCount() external view returns (uint256);

    /// @notice The stored state of a request.
    /// @param requestId The id.
    /// @return key Address of the request's ephemeral key (zero for an unknown id).
    /// @return expiresAt Last block in which the request can be fulfilled.
    /// @return status 0 none, 1 pending, 2 fulfilled, 3 confirmed.
    /// @return commitment keccak256(abi.encode(keccak256(pubkey64), quoteBlobHash, refBlockNumber, refBlockHash)).
    function getRequest(uint256 requestId)
        external
        view
        returns (address key, uint64 expiresAt, uint8 status, bytes32 commitment);

    /// @notice Answers pending requests; blob 0 must carry the onboard envelope with one ciphertext per id.
    /// @param requestIds Distinct pending, unexpired request ids, in envelope order.
    /// @param signature Master-key EIP-712 signature over
    /// `OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)`, responseBlobHash = blobhash(0).
    function fulfillOnboard(uint256[] calldata requestIds, bytes calldata signature) external;

    /// @notice Records that a newcomer holds the master secret.
    /// @param requestId A fulfilled request.
    /// @param signature The request key's EIP-712 signature over `OnboardReceipt(uint256 requestId,address xPub)`.
    function confirmOnboard(uint256 requestId, bytes calldata signature) external;

    // ---------------------------------------------------------------- freshness

    /// @notice Records the block in which `mark` was first sent (anyone may call).
    /// @dev A node generates a random mark for one decision and acts only on a verified view at or after this block
    /// (docs/protocol.md#verified-chain-view). A mark sent again keeps its first block and emits nothing, so a
    /// re-broadcast transaction never reverts.
    /// @param mark The mark.
    /// @return blockNumber The block in which the mark was first recorded.
    function markFresh(bytes32 mark) external returns (uint64 blockNumber);

    /// @notice The block in which a mark was first recorded.
    /// @param mark The mark.
    /// @return blockNumber The block number, 0 for a mark never sent.
    function freshnessMarkedAt(bytes32 mark) external view returns (uint64 blockNumber);

    // ---------------------------------------------------------------- EIP-712 and verification

    /// @notice EIP-712 domain separator of `{name:"KeyManager", version:"1", chainId, verifyingContract}`.
    /// @return The separator for the current chain id.
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    /// @notice EIP-5267 description of the EIP-712 domain.
    /// @return fields 0x0f: name, version, chainId and verifyingContract are used.
    /// @return name "KeyManager".
    /// @return version "1".
    /// @return chainId The current chain id.
    /// @return verifyingContract This contract.
    /// @return salt Unused (zero).
    /// @return extensions None.
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
        );

    /// @notice Checks a pod attestation: an EIP-712 `Attestation(string hostname,bytes32 appData)` signed by xPub.
    /// @dev Returns false, never reverts, on malformed or foreign signatures and before bootstrap.
    /// @param hostname The pod name.
    /// @param appData The 32 bytes the pod had attested.
    /// @param signature 65 bytes r ‖ s ‖ v, v in {0, 1, 27, 28}, low s.
    /// @return True when the master key signed exactly this.
    function verifyAttestation(string calldata hostname, bytes32 appData, bytes calldata signature)
        external
        view
        returns (bool);

    /// @notice Checks a dstack-compatible signature chain rooted at xPub (docs/protocol.md#keys-and-derivations).
    /// @dev Returns false, never reverts, on any malformed input, wrong signer, high s, or before bootstrap.
    /// @param appId The app's 20-byte id.
    /// @param derivedPubkey33 Compressed public key of the derived key.
    /// @param appPubkey33 Compressed public key of the app key.
    /// @param appSignature App-key signature over keccak256(purpose ‖ ":" ‖ lowercase hex of derivedPubkey33).
    /// @param kmsSignature Master-key signature over keccak256("dstack-kms-issued:" ‖ appId ‖ appPubkey33).
    /// @param purpose The purpose string the app key signed.
    /// @return True when both links hold.
    function verifySignatureChain(
        bytes20 appId,
        bytes calldata derivedPubkey33,
        bytes calldata appPubkey33,
        bytes calldata appSignature,
        bytes calldata kmsSignature,
        string calldata purpose
    ) external view returns (bool);
}
