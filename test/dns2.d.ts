// The part of dns2's server API the tests use (the package ships no types).
declare module 'dns2' {
  type Question = { name: string; type: number; class: number }
  type Answer = { name: string; type: number; class: number; ttl: number; address?: string; domain?: string }
  type Packet = { header: { id: number }; questions: Question[]; answers: Answer[] }
  type Server = {
    listen(options: { udp?: { port: number; address: string; type: 'udp4' | 'udp6' } }): Promise<unknown>
    addresses(): { udp?: { port: number; address: string } }
    close(): Promise<void> | void
  }
  const dns2: {
    Packet: {
      TYPE: { A: number; AAAA: number; PTR: number }
      CLASS: { IN: number }
      createResponseFromRequest(request: Packet): Packet
    }
    createServer(options: { udp: boolean; handle: (request: Packet, send: (response: Packet) => void) => void }): Server
  }
  export default dns2
}
