// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "./utils/KeyManagerFixture.sol";
import {IKeyManager} from "../src/IKeyManager.sol";

/// @notice Gas budgets of docs/protocol.md#registry-contract. Each call is measured as a transaction would run it: the registry's account
/// warm (a transaction's `to` is), its storage cold (vm.cool), via a raw call so no test-side encoding is counted.
/// Transaction figures add the cancun intrinsic cost (21000 + 16 per non-zero and 4 per zero calldata byte), so
/// they estimate the receipt's gasUsed from above (the CALL opcode's own 100 gas is included). The exact receipt
/// figures come from anvil: `npm run gas-report` and test/registry.test.ts.
contract GasTest is KeyManagerFixture {
    uint256 internal constant REQUEST_BUDGET = 120_000;
    uint256 internal constant FULFILL_ONE_BUDGET = 80_000;
    uint256 internal constant FULFILL_PER_REQUEST_BUDGET = 15_000; // in a batch of 50
    uint256 internal constant VERIFY_ATTESTATION_BUDGET = 10_000;
    uint256 internal constant VERIFY_CHAIN_BUDGET = 40_000;

    function _calldataGas(bytes memory data) internal pure returns (uint256 gas) {
        for (uint256 i; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    /// @dev Execution gas of one call with cold storage and a warm account.
    function _execution(bytes memory data) internal returns (uint256 used, bytes memory result) {
        vm.cool(address(km));
        uint256 size = address(km).code.length; // warms the account again, outside the measurement
        vm.assertTrue(size > 0, "registry deployed");
        bool ok;
        uint256 before = gasleft();
        (ok, result) = address(km).call(data);
        used = before - gasleft();
        vm.assertTrue(ok, "call succeeded");
    }

    function _transaction(bytes memory data) internal returns (uint256) {
        (uint256 used,) = _execution(data);
        return 21_000 + _calldataGas(data) + used;
    }

    function test_Gas_RequestOnboard() public {
        _bootstrap();
        _request(OTHER_PK); // not the first request: the counter slot is already non-zero, as on a live registry
        _setBlob(REQUEST_BLOB);
        uint256 gas = _transaction(
            abi.encodeCall(IKeyManager.requestOnboard, (_pubkey64(NEWCOMER_PK), uint64(block.number - 1)))
        );
        emit log_named_uint("requestOnboard tx gas (estimate)", gas);
        vm.assertLe(gas, REQUEST_BUDGET, "requestOnboard budget");
        vm.assertEq(_status(2), 1, "request recorded");
    }

    function test_Gas_RequestOnboard_First() public {
        _bootstrap();
        _setBlob(REQUEST_BLOB);
        uint256 gas = _transaction(
            abi.encodeCall(IKeyManager.requestOnboard, (_pubkey64(NEWCOMER_PK), uint64(block.number - 1)))
        );
        emit log_named_uint("first requestOnboard tx gas (estimate)", gas);
        vm.assertLe(gas, REQUEST_BUDGET, "requestOnboard budget");
    }

    function test_Gas_FulfillOnboard_One() public {
        _bootstrap();
        uint256[] memory ids = _ids(_request(NEWCOMER_PK));
        _setBlob(RESPONSE_BLOB);
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
        uint256 gas = _transaction(abi.encodeCall(IKeyManager.fulfillOnboard, (ids, signature)));
        emit log_named_uint("fulfillOnboard x1 tx gas (estimate)", gas);
        vm.assertLe(gas, FULFILL_ONE_BUDGET, "fulfillOnboard x1 budget");
        vm.assertEq(_status(ids[0]), 2, "fulfilled");
    }

    function test_Gas_FulfillOnboard_Fifty() public {
        _bootstrap();
        uint256[] memory ids = new uint256[](50);
        for (uint256 i; i < ids.length; ++i) {
            ids[i] = _request(NEWCOMER_PK + i);
        }
        _setBlob(RESPONSE_BLOB);
        bytes memory signature = _sign(MASTER_PK, _responseDigest(ids, RESPONSE_BLOB, 1));
        uint256 gas = _transaction(abi.encodeCall(IKeyManager.fulfillOnboard, (ids, signature)));
        emit log_named_uint("fulfillOnboard x50 tx gas (estimate)", gas);
        emit log_named_uint("fulfillOnboard x50 per request", gas / 50);
        vm.assertLe(gas, FULFILL_PER_REQUEST_BUDGET * 50, "fulfillOnboard per-request budget");
        vm.assertEq(_status(ids[49]), 2, "last fulfilled");
    }

    function test_Gas_VerifyAttestation() public {
        _bootstrap();
        bytes memory signature = _sign(MASTER_PK, _attestationDigest("web", bytes32(uint256(7))));
        (uint256 used, bytes memory result) =
            _execution(abi.encodeCall(IKeyManager.verifyAttestation, ("web", bytes32(uint256(7)), signature)));
        emit log_named_uint("verifyAttestation execution gas", used);
        vm.assertTrue(abi.decode(result, (bool)), "verified");
        vm.assertLe(used, VERIFY_ATTESTATION_BUDGET, "verifyAttestation budget");
    }

    function test_Gas_VerifySignatureChain() public {
        _bootstrap();
        bytes20 appId = bytes20(uint160(0xA99));
        bytes memory derived = _pubkey33(0xDE1);
        bytes memory app = _pubkey33(0xA99);
        bytes memory appSignature = _sign(
            0xA99, keccak256(abi.encodePacked("test-purpose:", _hexNo0x(derived)))
        );
        bytes memory kmsSignature = _sign(MASTER_PK, keccak256(abi.encodePacked("dstack-kms-issued:", appId, app)));
        (uint256 used, bytes memory result) = _execution(
            abi.encodeCall(
                IKeyManager.verifySignatureChain, (appId, derived, app, appSignature, kmsSignature, "test-purpose")
            )
        );
        emit log_named_uint("verifySignatureChain execution gas", used);
        vm.assertTrue(abi.decode(result, (bool)), "verified");
        vm.assertLe(used, VERIFY_CHAIN_BUDGET, "verifySignatureChain budget");
    }

    // ------------------------------------------------------------ after a rotation

    uint256 internal constant NEXT_MASTER_PK = 0xC0FFEE;

    /// @dev Generation 2 current, generation 1 in its overlap: both keys are in the registry's lookup.
    function _rotated() internal {
        _bootstrap();
        uint256 member = _join(NEWCOMER_PK, MASTER_PK);
        vm.prank(owner);
        km.startRotation(false, 7 days, 0);
        uint64 id = _propose(NEWCOMER_PK, member, NEXT_MASTER_PK, _ids(member));
        km.commitGeneration(id);
    }

    function _attestationGas(uint256 masterPk) internal returns (uint256 used) {
        bytes memory signature = _sign(masterPk, _attestationDigest("web", bytes32(uint256(7))));
        bytes memory result;
        (used, result) =
            _execution(abi.encodeCall(IKeyManager.verifyAttestation, ("web", bytes32(uint256(7)), signature)));
        vm.assertTrue(abi.decode(result, (bool)), "verified");
    }

    function _chainGas(uint256 masterPk) internal returns (uint256 used) {
        bytes20 appId = bytes20(uint160(0xA99));
        bytes memory derived = _pubkey33(0xDE1);
        bytes memory app = _pubkey33(0xA99);
        bytes memory appSignature = _sign(0xA99, keccak256(abi.encodePacked("test-purpose:", _hexNo0x(derived))));
        bytes memory kmsSignature = _sign(masterPk, keccak256(abi.encodePacked("dstack-kms-issued:", appId, app)));
        bytes memory result;
        (used, result) = _execution(
            abi.encodeCall(
                IKeyManager.verifySignatureChain, (appId, derived, app, appSignature, kmsSignature, "test-purpose")
            )
        );
        vm.assertTrue(abi.decode(result, (bool)), "verified");
    }

    function test_Gas_VerifyAfterRotation_CurrentGeneration() public {
        _rotated();
        uint256 attestation = _attestationGas(NEXT_MASTER_PK);
        uint256 chain = _chainGas(NEXT_MASTER_PK);
        emit log_named_uint("verifyAttestation execution gas, current generation 2", attestation);
        emit log_named_uint("verifySignatureChain execution gas, current generation 2", chain);
        vm.assertLe(attestation, VERIFY_ATTESTATION_BUDGET, "verifyAttestation budget");
        vm.assertLe(chain, VERIFY_CHAIN_BUDGET, "verifySignatureChain budget");
    }

    function test_Gas_VerifyAfterRotation_OlderGeneration() public {
        _rotated();
        uint256 current = _attestationGas(NEXT_MASTER_PK);
        uint256 older = _attestationGas(MASTER_PK);
        uint256 olderChain = _chainGas(MASTER_PK);
        emit log_named_uint("verifyAttestation execution gas, generation 1 in its overlap", older);
        emit log_named_uint("verifySignatureChain execution gas, generation 1 in its overlap", olderChain);
        // The older path adds the two cold reads (xPub -> generation, that generation's record) and little else.
        vm.assertLe(older, current + 2 * 2100 + 600, "two more storage reads");
        vm.assertLe(olderChain, VERIFY_CHAIN_BUDGET, "verifySignatureChain budget");
    }
}
