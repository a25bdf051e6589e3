// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IKeyManager
/// @notice Registry of a keymanager network (docs/protocol.md#registry-contract): governs which enclave measurements and TCB levels
/// may hold the master secret, publishes the master public key, and carries onboarding requests and responses
/// whose payloads travel as EIP-4844 blobs (only their versioned hashes are seen here).
interface IKeyManager {
    // ---------------------------------------------------------------- types

    /// @notice One master-key generation (docs/protocol.md#generations).
    /// @param xPub Ethereum address of the generation's master key (zero for an unknown generation).
    /// @param masterPubkey The master public key, SEC1-compressed (33 bytes; empty for an unknown generation).
    /// @param committedAt Timestamp of its bootstrap or of the commit that made it current.
    /// @param retiresAt Timestamp from which it no longer verifies; 0 while it is current.
    /// @param revoked Whether the owner (or an emergency rotation) revoked it: it never verifies again.
    /// @param purged Whether nodes must have erased it (pods get 410 for it, newcomers do not receive it).
    /// @param quoteBlobHash Versioned hash of the blob with the quote over its master key (bootstrap or proposal).
    /// @param escrowGuardianSet The guardian set of its latest escrow (0: never escrowed).
    /// @param escrowHash EIP-712 struct hash of its latest `GuardianEscrow` (0: never escrowed).
    struct GenerationInfo {
        address xPub;
        bytes masterPubkey;
        uint64 committedAt;
        uint64 retiresAt;
        bool revoked;
        bool purged;
        bytes32 quoteBlobHash;
        uint64 escrowGuardianSet;
        bytes32 escrowHash;
    }

    /// @notice The open rotation, if any.
    /// @param open Whether a rotation is open.
    /// @param emergency Whether the outgoing generation is revoked at commit (else it retires after `overlap`).
    /// @param overlap Seconds the outgoing generation keeps verifying after a planned commit.
    /// @param forceDelay Seconds after a proposal from which the owner may force its commit.
    /// @param startedAt When the owner opened it.
    struct RotationInfo {
        bool open;
        bool emergency;
        uint64 overlap;
        uint64 forceDelay;
        uint64 startedAt;
    }

    /// @notice The pending proposal of the next generation, if any.
    /// @param id Proposal id (0: none pending); ids count every proposal ever made, from 1.
    /// @param generation The generation it would become.
    /// @param proposedAt Timestamp of the proposal.
    /// @param recipients Number of members it was encrypted to (every active member at the time).
    /// @param acks Acknowledgements so far, the proposer's included.
    /// @param quorum Acknowledgements `commitGeneration` needs: a strict majority of `recipients`.
    /// @param proposerId Member id of the proposer.
    /// @param xPub Address of the proposed master key.
    /// @param masterPubkey The proposed master key, SEC1-compressed (33 bytes).
    /// @param proposalBlobHash Versioned hash of blob 0 of the proposal (the rotate envelope).
    struct ProposalInfo {
        uint64 id;
        uint64 generation;
        uint64 proposedAt;
        uint32 recipients;
        uint32 acks;
        uint32 quorum;
        uint256 proposerId;
        address xPub;
        bytes masterPubkey;
        bytes32 proposalBlobHash;
    }

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

    /// @notice The owner revoked a node: it is no longer a member, can never propose or acknowledge, and receives no
    /// later generation. A pending proposal it was a recipient of is dropped.
    /// @param memberId The node's request id.
    /// @param key Address of the node's key.
    event NodeRevoked(uint256 indexed memberId, address indexed key);

    /// @notice The owner opened a rotation to the next generation.
    /// @param generation The generation being made.
    /// @param emergency Whether the outgoing generation is revoked at commit.
    /// @param overlap Seconds the outgoing generation keeps verifying after a planned commit.
    /// @param forceDelay Seconds after a proposal from which the owner may force its commit.
    event RotationStarted(uint64 indexed generation, bool emergency, uint64 overlap, uint64 forceDelay);

    /// @notice The owner closed the open rotation without a commit.
    /// @param generation The generation that was being made.
    event RotationCancelled(uint64 indexed generation);

    /// @notice A member proposed the next generation; blob 0 of the transaction carries the rotate envelope (the quote
    /// over the new master key and the new secret encrypted to each recipient's node key).
    /// @param generation The generation it would become.
    /// @param proposal The proposal id.
    /// @param proposerId The proposing member.
    /// @param xPub Address of the proposed master key.
    /// @param masterPubkey The proposed 64-byte uncompressed master key.
    /// @param proposalBlobHash Versioned hash of blob 0.
    /// @param recipientIds Every active member, ascending: the envelope's ciphertexts are in this order.
    event GenerationProposed(
        uint64 indexed generation,
        uint64 indexed proposal,
        uint256 indexed proposerId,
        address xPub,
        bytes masterPubkey,
        bytes32 proposalBlobHash,
        uint256[] recipientIds
    );

    /// @notice A pending proposal was dropped: superseded by a newer one, a recipient was revoked, or the rotation
    /// was cancelled.
    /// @param proposal The proposal id.
    event GenerationProposalDropped(uint64 indexed proposal);

    /// @notice A member acknowledged a proposal: it decrypted the new secret and checked it against the proposed key.
    /// @param proposal The proposal id.
    /// @param memberId The member (the proposer acknowledges implicitly when it proposes).
    /// @param acks Acknowledgements so far.
    event GenerationAcknowledged(uint64 indexed proposal, uint256 indexed memberId, uint32 acks);

    /// @notice A proposal became the current generation.
    /// @param generation The new generation.
    /// @param xPub Its master key's address.
    /// @param proposal The proposal id.
    /// @param acks Acknowledgements it had.
    /// @param forced Whether the owner forced it past the deadline instead of a quorum.
    event GenerationCommitted(uint64 indexed generation, address indexed xPub, uint64 proposal, uint32 acks, bool forced);

    /// @notice A generation stops verifying at `retiresAt` (a planned commit, or the end of an older overlap).
    /// @param generation The generation.
    /// @param retiresAt Timestamp from which it no longer verifies.
    event GenerationRetirementScheduled(uint64 indexed generation, uint64 retiresAt);

    /// @notice A generation was revoked: it never verifies again and fulfilments under it stop.
    /// @param generation The generation.
    event GenerationRevoked(uint64 indexed generation);

    /// @notice Nodes must erase a generation that no longer verifies; newcomers no longer receive it.
    /// @param generation The generation.
    event GenerationPurged(uint64 indexed generation);

    /// @notice The owner proposed a guardian set; it becomes the active one at `activatesAt` unless replaced before.
    /// @param guardianSet The set id.
    /// @param threshold Shares needed to reconstruct a master secret (k).
    /// @param activatesAt Timestamp from which it is active (now + `measurementDelay`).
    /// @param pubkeys The guardians' 64-byte uncompressed keys, concatenated; share i + 1 belongs to key i.
    event GuardiansProposed(uint64 indexed guardianSet, uint8 threshold, uint64 activatesAt, bytes pubkeys);

    /// @notice A generation's master secret was escrowed to a guardian set (docs/protocol.md#guardians).
    /// @param generation The generation.
    /// @param guardianSet The guardian set.
    /// @param commitments Feldman commitments, k SEC1-compressed points; the first is the master public key.
    /// @param encryptedShares One ECIES ciphertext per guardian, in the set's order.
    event EscrowPublished(uint64 indexed generation, uint64 indexed guardianSet, bytes commitments, bytes[] encryptedShares);

    /// @notice The owner named the pending request that guardians may release shares to.
    /// @param requestId The request of the fresh enclave.
    event RecoveryStarted(uint256 indexed requestId);

    /// @notice The recovery ended: the enclave confirmed (`OnboardConfirmed` follows), or the owner cancelled it.
    /// @param requestId The request.
    /// @param completed Whether the enclave confirmed it holds the current master secret.
    event RecoveryEnded(uint256 indexed requestId, bool completed);

    /// @notice A guardian released its share of a generation to the recovery request's key.
    /// @param requestId The recovery request.
    /// @param generation The generation.
    /// @param index The guardian's share index (1-based position in its set).
    /// @param guardian The guardian's address.
    /// @param encryptedShare The share, ECIES-encrypted to the request's key.
    event ShareReleased(
        uint256 indexed requestId, uint64 indexed generation, uint8 index, address guardian, bytes encryptedShare
    );

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

    /// @notice The request was revoked (`revokeNode`).
    /// @param requestId The id.
    error KeyManagerNodeRevoked(uint256 requestId);

    /// @notice The id is not an active member (a confirmed, non-revoked request).
    /// @param memberId The id.
    error KeyManagerNotMember(uint256 memberId);

    /// @notice The answer to this request is for an older generation: it must be answered again.
    /// @param requestId The id.
    /// @param answeredGeneration The generation it was answered under.
    /// @param currentGeneration The current generation.
    error KeyManagerStaleResponse(uint256 requestId, uint64 answeredGeneration, uint64 currentGeneration);

    /// @notice Onboarding waits while a proposal is pending (its recipients are fixed; docs/protocol.md#rotation).
    /// @param proposal The pending proposal.
    error KeyManagerProposalPending(uint64 proposal);

    /// @notice A rotation is already open.
    error KeyManagerRotationInProgress();

    /// @notice No rotation is open.
    error KeyManagerRotationNotOpen();

    /// @notice Overlap above 365 days, or non-zero for an emergency rotation.
    /// @param overlap The rejected overlap.
    error KeyManagerInvalidOverlap(uint64 overlap);

    /// @notice Force delay above 365 days.
    /// @param forceDelay The rejected delay.
    error KeyManagerInvalidForceDelay(uint64 forceDelay);

    /// @notice The call names another generation than the one it applies to.
    /// @param given The generation given.
    /// @param expected The generation expected.
    error KeyManagerWrongGeneration(uint64 given, uint64 expected);

    /// @notice This master key was already used by a generation.
    /// @param xPub Its address.
    error KeyManagerMasterKeyReused(address xPub);

    /// @notice The recipients are not exactly the active members: wrong count, or not strictly ascending.
    /// @param given Number of recipients given.
    /// @param members Number of active members.
    error KeyManagerInvalidRecipients(uint256 given, uint256 members);

    /// @notice No pending proposal has this id.
    /// @param proposal The id.
    error KeyManagerUnknownProposal(uint64 proposal);

    /// @notice The member already acknowledged this proposal.
    /// @param proposal The proposal.
    /// @param memberId The member.
    error KeyManagerAlreadyAcknowledged(uint64 proposal, uint256 memberId);

    /// @notice The proposal has fewer acknowledgements than its quorum.
    /// @param acks Acknowledgements so far.
    /// @param quorum Acknowledgements needed.
    error KeyManagerQuorumNotReached(uint32 acks, uint32 quorum);

    /// @notice The owner may force the commit only from `forceAt` on.
    /// @param forceAt The first timestamp at which forcing is allowed.
    error KeyManagerForceTooEarly(uint64 forceAt);

    /// @notice No such generation (0, or above the current one).
    /// @param generation The generation.
    error KeyManagerUnknownGeneration(uint64 generation);

    /// @notice The generation is revoked.
    /// @param generation The generation.
    error KeyManagerGenerationRevoked(uint64 generation);

    /// @notice The generation is purged.
    /// @param generation The generation.
    error KeyManagerGenerationPurged(uint64 generation);

    /// @notice The generation still verifies (it is current, or retires later): it cannot be purged yet.
    /// @param generation The generation.
    error KeyManagerGenerationNotRetired(uint64 generation);

    /// @notice A guardian set needs 2 <= threshold <= guardians <= 32 keys of 64 bytes (or no key and threshold 0).
    /// @param pubkeysLength Length of the concatenated keys.
    /// @param threshold The threshold.
    error KeyManagerInvalidGuardians(uint256 pubkeysLength, uint8 threshold);

    /// @notice The same guardian key appears twice in a set.
    /// @param guardian Its address.
    error KeyManagerDuplicateGuardian(address guardian);

    /// @notice The guardian set is not the active one (or has no guardians).
    /// @param guardianSet The set id.
    error KeyManagerGuardianSetNotActive(uint64 guardianSet);

    /// @notice The escrow does not fit its guardian set or generation: commitment count, share count, or a first
    /// commitment other than the generation's master key.
    error KeyManagerEscrowMismatch();

    /// @notice The generation was never escrowed.
    /// @param generation The generation.
    error KeyManagerNoEscrow(uint64 generation);

    /// @notice The generation is already escrowed to this guardian set: one escrow per generation and set, so nodes
    /// that publish at the same time leave one escrow, not one overwriting the other.
    /// @param generation The generation.
    /// @param guardianSet The set it is escrowed to.
    error KeyManagerAlreadyEscrowed(uint64 generation, uint64 guardianSet);

    /// @notice The signer is not a guardian of the generation's escrow set.
    /// @param signer The recovered signer.
    error KeyManagerNotGuardian(address signer);

    /// @notice This guardian already released its share of this generation to this request.
    /// @param requestId The request.
    /// @param generation The generation.
    /// @param index The guardian's share index.
    error KeyManagerShareAlreadyReleased(uint256 requestId, uint64 generation, uint8 index);

    /// @notice The request is not the open recovery's request.
    /// @param requestId The request.
    error KeyManagerNotRecoveryRequest(uint256 requestId);

    /// @notice The request is not pending.
    /// @param requestId The request.
    error KeyManagerRequestNotPending(uint256 requestId);

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

    /// @notice The current master public key, SEC1-compressed (33 bytes); empty before bootstrap.
    /// @return The compressed key.
    function masterPubkey() external view returns (bytes memory);

    /// @notice Ethereum address of the current master key; zero before bootstrap.
    /// @return The address.
    function xPub() external view returns (address);

    /// @notice The current master key generation: 0 before bootstrap, 1 after it, one more at each committed rotation.
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
    /// @return status 0 none, 1 pending, 2 fulfilled, 3 confirmed (the node is a member), 4 revoked.
    /// @return commitment keccak256(abi.encode(keccak256(pubkey64), quoteBlobHash, refBlockNumber, refBlockHash)).
    function getRequest(uint256 requestId)
        external
        view
        returns (address key, uint64 expiresAt, uint8 status, bytes32 commitment);

    /// @notice Answers pending requests; blob 0 must carry the onboard envelope with one ciphertext per id, each holding
    /// every generation not purged (docs/protocol.md#onboarding-across-generations).
    /// @dev Reverts while a rotation proposal is pending and while the current generation is revoked. A request
    /// answered under an older generation and not yet confirmed may be answered again.
    /// @param requestIds Distinct unexpired request ids, pending (or answered under an older generation), in
    /// envelope order.
    /// @param signature Master-key EIP-712 signature over
    /// `OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)`, responseBlobHash = blobhash(0).
    function fulfillOnboard(uint256[] calldata requestIds, bytes calldata signature) external;

    /// @notice Records that a newcomer holds the current master secret: the request's node becomes a member.
    /// @dev Reverts while a rotation proposal is pending, and for an answer under an older generation. The request
    /// of an open recovery may confirm while pending (its secrets came from guardians), which ends the recovery.
    /// @param requestId A fulfilled request (or the open recovery's pending request).
    /// @param signature The request key's EIP-712 signature over `OnboardReceipt(uint256 requestId,address xPub)`.
    function confirmOnboard(uint256 requestId, bytes calldata signature) external;

    // ---------------------------------------------------------------- members and revocation

    /// @notice Number of active members: confirmed requests not revoked.
    /// @return The count.
    function memberCount() external view returns (uint256);

    /// @notice The generation a request was last answered under (for a member: the generation current when it joined).
    /// @param requestId The id.
    /// @return The generation, 0 while unanswered.
    function requestGeneration(uint256 requestId) external view returns (uint64);

    /// @notice Revokes a node (owner only): any existing request, pending, fulfilled or confirmed. It can never again
    /// be answered, propose or acknowledge; a member stops counting; a pending proposal is dropped (its blob holds
    /// the node's share) and an open recovery of this request ends.
    /// @param memberId The node's request id.
    function revokeNode(uint256 memberId) external;

    // ---------------------------------------------------------------- generations and rotation

    /// @notice A generation's record (current, older, revoked or purged).
    /// @param generation The generation, 1 to `generation()`.
    /// @return info The record; all zero for an unknown generation.
    function generationInfo(uint64 generation) external view returns (GenerationInfo memory info);

    /// @notice The generation a master key address belongs to.
    /// @param masterAddress A master key's address.
    /// @return The generation, 0 if none.
    function generationOf(address masterAddress) external view returns (uint64);

    /// @notice Whether signatures by this generation's master key verify now: current and not revoked, or older,
    /// not revoked and before its `retiresAt`.
    /// @param generation The generation.
    /// @return True when it verifies.
    function isGenerationValid(uint64 generation) external view returns (bool);

    /// @notice Opens a rotation to generation `generation() + 1` (owner only, after bootstrap, none open).
    /// @param emergency True: the outgoing generation is revoked at commit. False (planned): it keeps verifying for
    /// `overlap` seconds after the commit.
    /// @param overlap Seconds, at most 365 days; must be 0 for an emergency.
    /// @param forceDelay Seconds after a proposal from which the owner may force it; at most 365 days.
    function startRotation(bool emergency, uint64 overlap, uint64 forceDelay) external;

    /// @notice Closes the open rotation without a commit and drops its proposal (owner only).
    function cancelRotation() external;

    /// @notice The open rotation (all zero when none).
    /// @return The rotation.
    function rotation() external view returns (RotationInfo memory);

    /// @notice The pending proposal (id 0 when none).
    /// @return The proposal.
    function proposal() external view returns (ProposalInfo memory);

    /// @notice Number of proposals ever made; the next proposal's id is this plus one.
    /// @return The count.
    function proposalCount() external view returns (uint64);

    /// @notice Whether a member acknowledged a proposal (the proposer counts as having acknowledged its own).
    /// @param proposalId The proposal.
    /// @param memberId The member.
    /// @return True when acknowledged.
    function hasAcknowledged(uint64 proposalId, uint256 memberId) external view returns (bool);

    /// @notice Proposes the next generation (anyone may send it; a member signs it). Blob 0 carries the rotate envelope:
    /// the quote over `masterPubkey64` (report data `keymanager.rotate.v2`) and the new secret ECIES-encrypted to
    /// each recipient's node key. Replaces a pending proposal; onboarding waits until it is committed or dropped.
    /// @dev The proposer authenticates with its node key (the key of its onboarding request), never with a master
    /// key: a leaked master secret alone cannot install a successor.
    /// @param generation Must be `generation() + 1`.
    /// @param proposerId An active member.
    /// @param masterPubkey64 The new master public key (64 bytes, uncompressed, on secp256k1, never used before).
    /// @param recipientIds Every active member, strictly ascending (so exactly `memberCount()` ids).
    /// @param signature The proposer's EIP-712 signature over `GenerationProposal(uint64 proposal,uint64 generation,
    /// bytes masterPubkey,uint256[] recipientIds,bytes32 proposalBlobHash)`, proposal = `proposalCount() + 1`,
    /// proposalBlobHash = blobhash(0).
    /// @return proposalId The new proposal's id.
    function proposeGeneration(
        uint64 generation,
        uint256 proposerId,
        bytes calldata masterPubkey64,
        uint256[] calldata recipientIds,
        bytes calldata signature
    ) external returns (uint64 proposalId);

    /// @notice Acknowledges the pending proposal (anyone may send it; the member signs it).
    /// @param proposalId The pending proposal.
    /// @param memberId An active member.
    /// @param signature The member's EIP-712 signature over `GenerationAck(uint64 proposal,uint64 generation,address xPub)`
    /// with the proposal's generation and master key address.
    function acknowledgeGeneration(uint64 proposalId, uint256 memberId, bytes calldata signature) external;

    /// @notice Makes the pending proposal the current generation once a strict majority of its recipients acknowledged
    /// it (anyone may call). The outgoing generation retires after the overlap (planned) or is revoked (emergency);
    /// the one before it stops verifying now if it still did.
    /// @param proposalId The pending proposal.
    function commitGeneration(uint64 proposalId) external;

    /// @notice Commits the pending proposal without its quorum (owner only), from `forceDelay` after it was made.
    /// @param proposalId The pending proposal.
    function forceCommitGeneration(uint64 proposalId) external;

    /// @notice Revokes a generation (owner only): it never verifies again; while it is current, onboarding stops
    /// until a rotation commits.
    /// @param generation 1 to `generation()`.
    function revokeGeneration(uint64 generation) external;

    /// @notice Marks a generation that no longer verifies as purged (owner only): nodes erase it, pods get 410 for
    /// it, newcomers do not receive it.
    /// @param generation An older generation, revoked or past its `retiresAt`.
    function purgeGeneration(uint64 generation) external;

    // ---------------------------------------------------------------- guardians and recovery

    /// @notice Proposes the guardian set (owner only); it becomes active `measurementDelay` seconds later, and
    /// replaces a proposed set that is not active yet.
    /// @param pubkeys The guardians' 64-byte uncompressed public keys, concatenated (at most 32, distinct, on curve);
    /// empty with threshold 0 proposes no guardians (no further escrow).
    /// @param threshold Shares needed to reconstruct a secret (k), 2 to the number of keys: one guardian alone never
    /// holds a master secret.
    /// @return guardianSet The new set's id.
    function setGuardians(bytes calldata pubkeys, uint8 threshold) external returns (uint64 guardianSet);

    /// @notice The active guardian set: the latest proposed one whose activation time has come.
    /// @return guardianSet Its id, 0 when none.
    function activeGuardianSet() external view returns (uint64 guardianSet);

    /// @notice The proposed guardian set that is not active yet, if any.
    /// @return guardianSet Its id, 0 when none.
    function pendingGuardianSet() external view returns (uint64 guardianSet);

    /// @notice A guardian set's record.
    /// @param guardianSet The set id.
    /// @return pubkeysHash keccak256 of the concatenated keys (compare with `GuardiansProposed`).
    /// @return threshold k.
    /// @return count n.
    /// @return activatesAt When it becomes (or became) active, unless replaced before.
    function guardianSetInfo(uint64 guardianSet)
        external
        view
        returns (bytes32 pubkeysHash, uint8 threshold, uint8 count, uint64 activatesAt);

    /// @notice A guardian's share index in a set.
    /// @param guardianSet The set.
    /// @param guardian The guardian's address.
    /// @return index 1-based position of its key in the set, 0 if it is not in it.
    function guardianIndex(uint64 guardianSet, address guardian) external view returns (uint8 index);

    /// @notice Publishes a generation's escrow to the active guardian set (anyone may send it; that generation's
    /// master key signs it). Calldata and the event keep it where blobs' pruning does not reach.
    /// @param generation A generation neither revoked nor purged, not yet escrowed to this set.
    /// @param guardianSet The active guardian set.
    /// @param commitments k Feldman commitments (33-byte compressed points, concatenated); the first must be the
    /// generation's master public key.
    /// @param encryptedShares n ciphertexts, share i + 1 ECIES-encrypted to guardian key i.
    /// @param signature The generation's master-key EIP-712 signature over
    /// `GuardianEscrow(uint64 generation,uint64 guardianSet,bytes commitments,bytes[] encryptedShares)`.
    function publishEscrow(
        uint64 generation,
        uint64 guardianSet,
        bytes calldata commitments,
        bytes[] calldata encryptedShares,
        bytes calldata signature
    ) external;

    /// @notice Names the pending request of a fresh attested enclave as the one guardians may release shares to
    /// (owner only; replaces an open recovery).
    /// @param requestId A pending request.
    function startRecovery(uint256 requestId) external;

    /// @notice Ends the open recovery without completion (owner only).
    function cancelRecovery() external;

    /// @notice The open recovery's request id, 0 when none.
    /// @return The request id.
    function recoveryRequest() external view returns (uint256);

    /// @notice Releases a guardian's share of a generation to the recovery request's key (anyone may send it; the
    /// guardian signs it).
    /// @param requestId The open recovery's request.
    /// @param generation An escrowed, unpurged generation.
    /// @param encryptedShare The share, ECIES-encrypted to the request's key.
    /// @param signature The guardian's EIP-712 signature over
    /// `ShareRelease(uint256 requestId,uint64 generation,bytes encryptedShare)`.
    function releaseShare(uint256 requestId, uint64 generation, bytes calldata encryptedShare, bytes calldata signature)
        external;

    /// @notice Which guardians released their share of a generation to a request.
    /// @param requestId The request.
    /// @param generation The generation.
    /// @return Bit i set when the guardian with index i released.
    function releasedShares(uint256 requestId, uint64 generation) external view returns (uint256);

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

    /// @notice Checks a pod attestation: an EIP-712 `Attestation(string hostname,bytes32 appData)` signed by the master
    /// key of a generation that verifies now (`isGenerationValid`): the current one unless revoked, or an older one
    /// during its overlap.
    /// @dev Returns false, never reverts, on malformed or foreign signatures and before bootstrap. The current
    /// generation costs one storage read; an older one two more.
    /// @param hostname The pod name.
    /// @param appData The 32 bytes the pod had attested.
    /// @param signature 65 bytes r ‖ s ‖ v, v in {0, 1, 27, 28}, low s.
    /// @return True when the master key signed exactly this.
    function verifyAttestation(string calldata hostname, bytes32 appData, bytes calldata signature)
        external
        view
        returns (bool);

    /// @notice Checks a dstack-compatible signature chain rooted at the master key of a generation that verifies now
    /// (docs/protocol.md#keys-and-derivations), as `verifyAttestation` does.
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
