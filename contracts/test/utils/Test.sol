// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The few Foundry cheatcodes these tests use, declared here because npm's forge-std is an unofficial
/// 2022 copy and the project installs nothing but npm packages.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    struct Wallet {
        address addr;
        uint256 publicKeyX;
        uint256 publicKeyY;
        uint256 privateKey;
    }

    function blobhashes(bytes32[] calldata hashes) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function expectEmit() external;
    function expectEmit(address emitter) external;
    function roll(uint256 newHeight) external;
    function warp(uint256 newTimestamp) external;
    function chainId(uint256 newChainId) external;
    function setBlockhash(uint256 blockNumber, bytes32 blockHash) external;
    function sign(uint256 privateKey, bytes32 digest) external returns (uint8 v, bytes32 r, bytes32 s);
    function addr(uint256 privateKey) external returns (address);
    function createWallet(uint256 privateKey) external returns (Wallet memory);
    function assume(bool condition) external pure;
    function cool(address target) external;
    function load(address target, bytes32 slot) external view returns (bytes32 data);
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
    function toString(bytes calldata value) external pure returns (string memory);
    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertEq(bool left, bool right, string calldata message) external pure;
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertEq(bytes calldata left, bytes calldata right, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
}

/// @notice Minimal base for the registry tests: the cheatcode handle and a log event for measured figures.
abstract contract Test {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @notice Shown by `forge test -vv`.
    event log_named_uint(string key, uint256 val);
}
