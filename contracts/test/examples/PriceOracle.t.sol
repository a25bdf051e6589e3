// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {KeyManagerFixture} from "../utils/KeyManagerFixture.sol";
import {KeyManager} from "../../src/KeyManager.sol";
import {IKeyManager} from "../../src/IKeyManager.sol";
import {PriceOracle} from "../../examples/PriceOracle.sol";

/// @notice The example oracle takes a report only from a key whose dstack chain verifies against the registry for
/// the pinned appId and the fixed purpose; chains and signatures are built with vm.sign, independently of the
/// contracts (docs/protocol.md#keys-and-derivations).
contract PriceOracleTest is KeyManagerFixture {
    uint256 internal constant APP_PK = 0xA99;
    uint256 internal constant DERIVED_PK = 0xDE1;
    bytes20 internal constant APP_ID = bytes20(hex"00112233445566778899aabbccddeeff00112233");
    bytes32 internal constant ETH_USD = keccak256("ETH/USD");

    PriceOracle internal oracle;

    event PriceReported(bytes32 indexed pair, uint256 price, uint64 timestamp, address indexed signer);

    function setUp() public override {
        super.setUp();
        _bootstrap();
        _clearBlobs();
        oracle = new PriceOracle(km, APP_ID);
    }

    // ------------------------------------------------------------ helpers

    function _chain(uint256 derivedPk, uint256 appPk, bytes20 appId, string memory purpose, uint256 rootPk)
        internal
        returns (PriceOracle.KeyChain memory chain)
    {
        bytes memory derived33 = _pubkey33(derivedPk);
        chain.derivedPubkey64 = _pubkey64(derivedPk);
        chain.appPubkey33 = _pubkey33(appPk);
        chain.appSignature = _sign(appPk, keccak256(abi.encodePacked(purpose, ":", _hexNo0x(derived33))));
        chain.kmsSignature = _sign(rootPk, keccak256(abi.encodePacked("dstack-kms-issued:", appId, chain.appPubkey33)));
    }

    function _goodChain() internal returns (PriceOracle.KeyChain memory) {
        return _chain(DERIVED_PK, APP_PK, APP_ID, "price-oracle", MASTER_PK);
    }

    function _report(uint256 price, uint64 timestamp) internal pure returns (PriceOracle.Report memory) {
        return PriceOracle.Report({pair: ETH_USD, price: price, timestamp: timestamp});
    }

    /// @dev The report digest written out, not taken from the oracle.
    function _digest(address oracleAddress, PriceOracle.Report memory report) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("keymanager.example.PriceReport.v1"),
                block.chainid,
                oracleAddress,
                report.pair,
                report.price,
                report.timestamp
            )
        );
    }

    function _signReport(uint256 pk, PriceOracle.Report memory report) internal returns (bytes memory) {
        return _sign(pk, _digest(address(oracle), report));
    }

    function _expectUntrusted() internal {
        vm.expectRevert(PriceOracle.PriceOracleUntrustedKey.selector);
    }

    // ------------------------------------------------------------ accepted

    function test_Constructor() public view {
        vm.assertEq(address(oracle.registry()), address(km), "registry");
        vm.assertEq(bytes32(oracle.appId()), bytes32(APP_ID), "appId");
        vm.assertEq(keccak256(bytes(oracle.PURPOSE())), keccak256("price-oracle"), "purpose");
    }

    function test_RevertWhen_ConstructorZeroArguments() public {
        vm.expectRevert(PriceOracle.PriceOracleZeroArgument.selector);
        new PriceOracle(IKeyManager(address(0)), APP_ID);
        vm.expectRevert(PriceOracle.PriceOracleZeroArgument.selector);
        new PriceOracle(km, bytes20(0));
    }

    function test_ReportDigest() public {
        PriceOracle.Report memory report = _report(3000e8, uint64(block.timestamp));
        vm.assertEq(oracle.reportDigest(report), _digest(address(oracle), report), "digest");
        PriceOracle other = new PriceOracle(km, APP_ID);
        vm.assertTrue(other.reportDigest(report) != oracle.reportDigest(report), "bound to the oracle address");
    }

    function test_Submit() public {
        PriceOracle.Report memory report = _report(3000e8, uint64(block.timestamp));
        vm.expectEmit(address(oracle));
        emit PriceReported(ETH_USD, 3000e8, uint64(block.timestamp), vm.addr(DERIVED_PK));
        oracle.submit(report, _signReport(DERIVED_PK, report), _goodChain());
        (uint256 price, uint64 timestamp) = oracle.latestPrice(ETH_USD);
        vm.assertEq(price, 3000e8, "price");
        vm.assertEq(uint256(timestamp), block.timestamp, "timestamp");
    }

    function test_Submit_NewerReportReplacesOlder() public {
        PriceOracle.KeyChain memory chain = _goodChain();
        PriceOracle.Report memory first = _report(3000e8, uint64(block.timestamp - 10));
        oracle.submit(first, _signReport(DERIVED_PK, first), chain);
        PriceOracle.Report memory second = _report(3100e8, uint64(block.timestamp));
        oracle.submit(second, _signReport(DERIVED_PK, second), chain);
        (uint256 price,) = oracle.latestPrice(ETH_USD);
        vm.assertEq(price, 3100e8, "newest price");
    }

    function test_Submit_SignatureWithV01() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        bytes memory signature = _signReport(DERIVED_PK, report);
        (,, uint8 v) = _split(signature);
        oracle.submit(report, _withV(signature, v - 27), _goodChain());
    }

    function test_Submit_ChainSignaturesWithV01() public {
        PriceOracle.KeyChain memory chain = _goodChain();
        (,, uint8 appV) = _split(chain.appSignature);
        (,, uint8 kmsV) = _split(chain.kmsSignature);
        chain.appSignature = _withV(chain.appSignature, appV - 27);
        chain.kmsSignature = _withV(chain.kmsSignature, kmsV - 27);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        oracle.submit(report, _signReport(DERIVED_PK, report), chain);
    }

    function testFuzz_Submit(uint256 price, uint64 age, uint256 derivedPk) public {
        derivedPk = bound(derivedPk, 1, N - 1);
        age = uint64(bound(age, 0, block.timestamp - 1));
        PriceOracle.Report memory report = _report(price, uint64(block.timestamp) - age);
        oracle.submit(report, _signReport(derivedPk, report), _chain(derivedPk, APP_PK, APP_ID, "price-oracle", MASTER_PK));
        (uint256 stored,) = oracle.latestPrice(ETH_USD);
        vm.assertEq(stored, price, "price");
    }

    // ------------------------------------------------------------ refused: the key

    function test_RevertWhen_SignedByAnotherKey() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        vm.expectRevert(PriceOracle.PriceOracleInvalidSignature.selector);
        oracle.submit(report, _signReport(OTHER_PK, report), _goodChain());
    }

    function test_RevertWhen_AnotherKeyWithoutAChain() public {
        // OTHER_PK signs and claims the app key signed it too: the app signature is over another key.
        PriceOracle.KeyChain memory chain = _goodChain();
        chain.derivedPubkey64 = _pubkey64(OTHER_PK);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        _expectUntrusted();
        oracle.submit(report, _signReport(OTHER_PK, report), chain);
    }

    function test_RevertWhen_SwappedPurpose() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        _expectUntrusted();
        oracle.submit(report, _signReport(DERIVED_PK, report), _chain(DERIVED_PK, APP_PK, APP_ID, "ethereum", MASTER_PK));
    }

    function test_RevertWhen_AnotherAppId() public {
        bytes20 otherApp = bytes20(keccak256("another app"));
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        _expectUntrusted();
        oracle.submit(report, _signReport(DERIVED_PK, report), _chain(DERIVED_PK, APP_PK, otherApp, "price-oracle", MASTER_PK));
    }

    function test_RevertWhen_AnotherRoot() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        _expectUntrusted();
        oracle.submit(report, _signReport(DERIVED_PK, report), _chain(DERIVED_PK, APP_PK, APP_ID, "price-oracle", OTHER_PK));
    }

    function test_RevertWhen_AppKeySwapped() public {
        PriceOracle.KeyChain memory chain = _goodChain();
        chain.appPubkey33 = _pubkey33(OTHER_PK);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        _expectUntrusted();
        oracle.submit(report, _signReport(DERIVED_PK, report), chain);
    }

    function test_RevertWhen_RegistryNotBootstrapped() public {
        KeyManager fresh = new KeyManager(owner, 0);
        PriceOracle unbooted = new PriceOracle(fresh, APP_ID);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        bytes memory signature = _sign(DERIVED_PK, _digest(address(unbooted), report));
        _expectUntrusted();
        unbooted.submit(report, signature, _goodChain());
    }

    function test_RevertWhen_HighSChainSignature() public {
        PriceOracle.KeyChain memory chain = _goodChain();
        chain.kmsSignature = _highS(chain.kmsSignature);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        _expectUntrusted();
        oracle.submit(report, _signReport(DERIVED_PK, report), chain);
    }

    // ------------------------------------------------------------ refused: the report

    function test_RevertWhen_ReportAltered() public {
        PriceOracle.Report memory report = _report(3000e8, uint64(block.timestamp));
        bytes memory signature = _signReport(DERIVED_PK, report);
        report.price = 1;
        vm.expectRevert(PriceOracle.PriceOracleInvalidSignature.selector);
        oracle.submit(report, signature, _goodChain());
    }

    function test_RevertWhen_ReportForAnotherOracle() public {
        PriceOracle other = new PriceOracle(km, APP_ID);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        bytes memory signature = _sign(DERIVED_PK, _digest(address(other), report));
        vm.expectRevert(PriceOracle.PriceOracleInvalidSignature.selector);
        oracle.submit(report, signature, _goodChain());
    }

    function test_RevertWhen_ReportSignatureMalformed() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        bytes memory signature = _signReport(DERIVED_PK, report);
        bytes[4] memory bad = [_highS(signature), _withV(signature, 29), new bytes(65), new bytes(64)];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(PriceOracle.PriceOracleInvalidSignature.selector);
            oracle.submit(report, bad[i], _goodChain());
        }
    }

    function test_RevertWhen_PubkeyLength() public {
        PriceOracle.KeyChain memory chain = _goodChain();
        chain.derivedPubkey64 = _pubkey33(DERIVED_PK);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(PriceOracle.PriceOracleInvalidPubkeyLength.selector, 33));
        oracle.submit(report, _signReport(DERIVED_PK, report), chain);
    }

    function test_RevertWhen_Replayed() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        bytes memory signature = _signReport(DERIVED_PK, report);
        oracle.submit(report, signature, _goodChain());
        vm.expectRevert(
            abi.encodeWithSelector(PriceOracle.PriceOracleStaleReport.selector, report.timestamp, report.timestamp)
        );
        oracle.submit(report, signature, _goodChain());
    }

    function test_RevertWhen_OlderThanStored() public {
        PriceOracle.Report memory newer = _report(2, uint64(block.timestamp));
        oracle.submit(newer, _signReport(DERIVED_PK, newer), _goodChain());
        PriceOracle.Report memory older = _report(1, uint64(block.timestamp - 1));
        vm.expectRevert(abi.encodeWithSelector(PriceOracle.PriceOracleStaleReport.selector, older.timestamp, newer.timestamp));
        oracle.submit(older, _signReport(DERIVED_PK, older), _goodChain());
    }

    function test_RevertWhen_TimestampZero() public {
        PriceOracle.Report memory report = _report(1, 0);
        vm.expectRevert(abi.encodeWithSelector(PriceOracle.PriceOracleStaleReport.selector, 0, 0));
        oracle.submit(report, _signReport(DERIVED_PK, report), _goodChain());
    }

    function test_RevertWhen_FutureReport() public {
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp + 1));
        vm.expectRevert(abi.encodeWithSelector(PriceOracle.PriceOracleFutureReport.selector, report.timestamp));
        oracle.submit(report, _signReport(DERIVED_PK, report), _goodChain());
    }

    function testFuzz_RevertWhen_SignedByAnotherKey(uint256 pk) public {
        pk = bound(pk, 1, N - 1);
        vm.assume(pk != DERIVED_PK);
        PriceOracle.Report memory report = _report(1, uint64(block.timestamp));
        vm.expectRevert(PriceOracle.PriceOracleInvalidSignature.selector);
        oracle.submit(report, _signReport(pk, report), _goodChain());
    }

    // ------------------------------------------------------------ gas

    function test_Gas_Submit() public {
        PriceOracle.Report memory report = _report(3000e8, uint64(block.timestamp));
        bytes memory signature = _signReport(DERIVED_PK, report);
        PriceOracle.KeyChain memory chain = _goodChain();
        uint256 before = gasleft();
        oracle.submit(report, signature, chain);
        emit log_named_uint("PriceOracle.submit gas (first report of a pair)", before - gasleft());
    }

    /// @dev forge-std's bound, written out (no forge-std here).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + (x % (max - min + 1));
    }
}
